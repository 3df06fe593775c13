"""Every error type has words, the most specific ones win, and crashes do not close the window."""

from __future__ import annotations

import inspect
import sys

import victor_gui.errors as errors
from victor_gui.ui.error_text import ERROR_TEXT, describe_error, error_sentence


def test_every_error_class_has_its_own_sentence() -> None:
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, errors.VictorGuiError)]
    missing = [c.__name__ for c in classes if c not in ERROR_TEXT]
    assert missing == []
    assert len(set(ERROR_TEXT.values())) == len(ERROR_TEXT)


def test_most_specific_class_wins_and_detail_is_kept() -> None:
    exc = errors.ModelLoadingError("Loading model", "llamacpp", status_code=503)
    assert error_sentence(exc) == ERROR_TEXT[errors.ModelLoadingError]
    text = describe_error(errors.MissingAPIKeyError("Set OPENAI_API_KEY", "openai"))
    assert text.startswith(ERROR_TEXT[errors.MissingAPIKeyError]) and "OPENAI_API_KEY" in text
    assert error_sentence(ValueError("x")) == "Something unexpected went wrong."


def test_uncaught_exception_shows_a_dialog_and_keeps_the_window(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))  # the dialog names the log directory
    from victor_gui.ui.app import CrashReporter
    from victor_gui.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    reporter = CrashReporter(window)
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        reporter.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    assert reporter.count == 1
    assert reporter._dialog is not None and reporter._dialog.isVisible()
    assert not reporter._dialog.isModal()
    assert "boom in a slot" in reporter._dialog.informativeText()
    assert window.isVisible()


def test_crash_dialog_names_the_log_file_that_is_written(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The dialog said victor-gui.log while logging wrote victor_gui.log: the user found no file.
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    from victor_gui.core.logging_setup import LOG_NAME
    from victor_gui.ui.app import CrashReporter, log_dir
    from victor_gui.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    reporter = CrashReporter(window)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        reporter.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    assert reporter._dialog is not None
    assert str(log_dir() / LOG_NAME) in reporter._dialog.informativeText()
    assert LOG_NAME == "victor_gui.log"
