"""PyInstaller entry point: the frozen ``victor-gui`` runs the same ``main`` as the installed one."""

import multiprocessing
import sys

from victor_gui.__main__ import main

if __name__ == "__main__":
    # Documents convert in a spawned child (services/doc_worker.py); in a frozen app that child
    # is this executable, and freeze_support() makes it run the worker instead of the app.
    multiprocessing.freeze_support()
    sys.exit(main())
