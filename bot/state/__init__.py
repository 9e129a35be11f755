"""What the bot owns in a server: the SQLite file, conversations, and changes to the library."""
