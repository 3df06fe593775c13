"""Victor GUI: a local-inference-first desktop chat client.

The packages outside :mod:`victor_gui.ui` form the Qt-free core (providers, model manager,
storage, services); only :mod:`victor_gui.ui` imports PySide6 or qasync.
"""

__version__ = "0.1.0"
