"""Start AutoHome: `python main.py [-n] [-t] ...`; see `python main.py --help`."""

from autohome.cli import entry

if __name__ == "__main__":
    entry()
