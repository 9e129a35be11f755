"""The coach loop: questions the library can't answer go to the team's coaches, and their answers come back
to the riders and into the team's own library."""
