"""AutoHome's own tree of loggers, apart from the one the `logging` module keeps for everyone.

Why a tree of its own: modules share the process, and ordinary module code reconfigures
`logging` (`basicConfig`, `dictConfig`, `disable`, `getLogger("autohome").handlers.clear()`).
Loggers made here belong to a `logging.Manager` that none of those calls reach, so nothing a
module does to `logging` can silence AutoHome or loop its lines back into it. The loggers
are ordinary `logging.Logger` objects; only where they come from differs.
"""

from __future__ import annotations

import logging

MODULE_LOGGER = "autohome.modules"  # each module's logger is autohome.modules.<file name>

_ROOT = logging.RootLogger(logging.WARNING)
_MANAGER = logging.Manager(_ROOT)
_ROOT.manager = _MANAGER  # the class default is the global manager


def get_logger(name: str) -> logging.Logger:
    """AutoHome's logger `name` (such as `autohome.main`), in AutoHome's own tree."""
    return _MANAGER.getLogger(name)

