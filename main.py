"""Start AutoHome: `python main.py [-n] [-t] ...`; see `python main.py --help`."""

from autohome.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
