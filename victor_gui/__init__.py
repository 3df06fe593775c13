"""Victor GUI: a local-inference-first desktop chat client.

The packages outside :mod:`victor_gui.ui` form the Qt-free core (providers, model manager,
storage, services); only :mod:`victor_gui.ui` imports PySide6 or qasync.
"""

__version__ = "0.1.0"

import sys as _sys

# httpx's package __init__ imports its command-line tool (``httpx._main``), which imports rich
# and click whenever they happen to be installed: ~100 modules and ~5 MB of RSS in every process
# of ours, for a tool we never run. A None entry makes that optional import fail the way it does
# without httpx's ``cli`` extra (httpx then defines a stub ``main``); nothing else changes.
if "httpx" not in _sys.modules:
    _sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
