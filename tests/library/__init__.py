"""The knowledge library: its files, their sources, and how they are chunked."""
