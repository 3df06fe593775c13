"""PyInstaller entry point: the frozen ``victor-gui`` runs the same ``main`` as the installed one."""

import sys

from victor_gui.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
