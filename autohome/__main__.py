"""`python -m autohome` does what `python main.py` does."""

from autohome.cli import entry

entry()
