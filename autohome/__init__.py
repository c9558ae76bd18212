"""AutoHome: a quiet personal server that runs small Python modules on a schedule."""

__version__ = "0.1.0"
