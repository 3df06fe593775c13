"""What PySide builds before the window's first paint (issue 14 item 6: launch ratio).

PySide 6.11 creates a binding class when a module first names it, and with it every enum of
the class, through Python's enum module; converting a QEvent for a Python override builds all
~50 event classes. Each is paid by the first paint when it happens before it. These were built
before the first paint and are not needed for it: the slash completion list (QListWidget), the
file dialog and clipboard image of attaching, the crash dialog, and the event classes (the slash
key filter and the context meter's changeEvent, both gone from start-up).

Checked in a fresh interpreter stopped at the first paint of the real start-up (``App``)."""

from __future__ import annotations

from pathlib import Path

from tests.ui.test_lazy_imports import run_child

CHILD = r"""
import json, os, sys

import PySide6.QtCore as core, PySide6.QtGui as gui, PySide6.QtWidgets as widgets

import victor_gui.ui.app as app_module


def stop(self):
    built = sorted(name for module in (core, gui, widgets) for name in vars(module) if name.startswith("Q"))
    print(json.dumps({"built": built, "modules": sorted(sys.modules)}), flush=True)
    os._exit(0)


app_module.App._after_first_paint = stop
app_module.run_app(self_test=True)
"""

NOT_BEFORE_PAINT = ("QListWidget", "QFileDialog", "QMessageBox", "QImage", "QMimeData", "QDesktopServices",
                    "QTabletEvent", "QKeyEvent", "QGraphicsSceneEvent")


def test_first_paint_builds_no_class_only_later_code_needs(tmp_path: Path) -> None:
    result = run_child(CHILD, tmp_path)
    # The window really was built: its chat pane's classes are there.
    assert {"QMainWindow", "QPlainTextEdit", "QComboBox", "QSplitter"} <= set(result["built"])
    assert [name for name in NOT_BEFORE_PAINT if name in result["built"]] == []
    assert "dataclasses" not in result["modules"]
