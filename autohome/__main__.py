"""`python -m autohome` does what `python main.py` does."""

from autohome.cli import main

raise SystemExit(main())
