"""The Discord bot in process (simcord), its storage and operations, and the install path."""
