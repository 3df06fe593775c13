"""Logging for the app: a rotating log file whose every line has been through :func:`redact`.

The :class:`RedactingFilter` sits on the handlers (a filter on a logger does not see records
propagated from child loggers), and it redacts the fully formatted message, the traceback text
and the stack text, so a key reaches no log line at any level, however it was passed
(message, ``%s`` argument, exception message or a local variable's repr in a traceback).
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from types import TracebackType

from victor_gui.core.redact import redact

LOG_NAME = "victor_gui.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFilter(logging.Filter):
    """Replace a record's message, traceback and stack text with redacted versions."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _add_handler(root: logging.Logger, handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)


# Libraries that log one line per request or per connection at INFO.
_CHATTY_LIBRARIES = ("httpx", "httpcore", "mcp", "mcp.client", "asyncio")


def setup_logging(log_dir: Path, *, level: int = logging.INFO, console: bool = False) -> Path:
    """Send the app's logs to ``log_dir/victor_gui.log`` (rotating), redacted; returns the file.

    Also adds the filter to any handler already on the root logger, so nothing installed before
    (or by a library) writes a secret either. Safe to call again: old app handlers are replaced.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / LOG_NAME
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_victor_gui", False):
            root.removeHandler(handler)
            handler.close()
        elif not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2_000_000, backupCount=3, encoding="utf-8", delay=True
    )
    file_handler._victor_gui = True  # type: ignore[attr-defined]
    _add_handler(root, file_handler)
    if console:
        stream = logging.StreamHandler()
        stream._victor_gui = True  # type: ignore[attr-defined]
        _add_handler(root, stream)
    root.setLevel(level)
    # httpx logs every request at INFO ("HTTP Request: GET …/api/tags 200 OK"): the health probes
    # and discovery alone filled 121 KB of log in 7 minutes. Requests are routine; they show
    # when the app runs at DEBUG, and failures reach the log through the app's own messages.
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    return path


def log_crash(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: TracebackType | None,
    *,
    note: str = "Unhandled error",
) -> None:
    """Record an uncaught exception (redacted like every other line) at CRITICAL."""
    logging.getLogger("victor_gui.crash").critical(note, exc_info=(exc_type, exc, tb))


def install_excepthook() -> None:
    """Route uncaught exceptions through :func:`log_crash`; stderr gets the redacted text too.

    The default hook is not chained: it would print the unredacted traceback.
    """

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log_crash(exc_type, exc, tb)
        if sys.stderr is not None:  # None under pythonw / a windowed frozen app
            sys.stderr.write(redact("".join(traceback.format_exception(exc_type, exc, tb))))

    sys.excepthook = hook
