"""The headless commands (``victor-gui providers``, ``doctor``, ``fit``, ...): the top layer beside
the window, Qt-free, free to use every layer below (services, servers, sizing, config)."""
