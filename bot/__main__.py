"""`python -m bot` runs the Discord bot, like `hinge run`."""

import sys

from bot.cli import main

sys.exit(main(["run", *sys.argv[1:]]))
