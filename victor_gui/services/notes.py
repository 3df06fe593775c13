"""Transcript notes: what the chat shows between turns but never sends to a model.

A note is a stored message with role ``note`` (:data:`~victor_gui.storage.models.NOTE_ROLE`)
and ``meta["kind"]``:

* ``switch``: the provider or model changed here. ``meta["from"]``/``meta["to"]`` hold
  ``{provider, model, endpoint}``.
* ``trim``: the next request left out the oldest turns to fit the model's context window.
  ``meta``: ``dropped_turns``, ``context_window``, ``source`` (``server``/``table``/``default``),
  ``estimated_tokens``, ``budget``, ``fits``.
* ``fallback``: the chosen provider could not answer and the next one in the chain did (or
  none did). ``meta["attempts"]`` holds ``{provider, model, endpoint, error, message}`` per
  failed target, ``meta["answered_by"]`` ``{provider, model, endpoint}`` or None.
* ``failover``: endpoints of the chosen target did not answer before any output and the next
  one did. ``meta``: ``failed`` (``[{provider, endpoint, error}]``), ``answered``.

Why a role of its own rather than a ``system`` message: ``Message`` refuses the role, so a note
can never reach a model as an instruction by accident; :meth:`ChatSession.history` leaves
notes out, and they are exported and searchable like any message. Regenerate and edit-and-resend
keep ``switch`` notes (the model change stays visible) and drop ``trim`` notes (trimming is
worked out again for the new request).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from victor_gui.storage.models import NOTE_ROLE, StoredMessage

SWITCH = "switch"
TRIM = "trim"
FALLBACK = "fallback"


# Why a target was passed over, in words (by ``ProviderError.kind``).
_FAILED_BECAUSE = {
    "connection": "could not connect",
    "timeout": "timed out",
    "rate_limit": "rate-limited",
    "server": "server error",
    "loading": "still loading the model",
    "circuit_open": "failing repeatedly, paused",
}
FAILOVER = "failover"

__all__ = ["FAILOVER", "FALLBACK", "NOTE_ROLE", "SWITCH", "TRIM", "failover_text", "failure_reason",
           "fallback_text", "last_trim_since_switch", "switch_text", "trim_text"]


def failure_reason(error: Exception) -> str:
    """A few words on why a server did not answer ("connection refused", "timed out" ...)."""
    cause: BaseException | None = getattr(error, "raw_error", None) or error
    seen = 0
    while cause is not None and seen < 8:  # the OS error sits under httpx's and anyio's wrappers
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    text = str(error).lower()
    for needle, words in (("refused", "connection refused"), ("timed out", "timed out"),
                          ("timeout", "timed out"), ("reset", "connection reset"),
                          ("name or service", "host not found"), ("getaddrinfo", "host not found")):
        if needle in text:
            return words
    kind = getattr(error, "kind", None)
    return str(kind).replace("_", " ") if kind else type(error).__name__


def failover_text(failed: list[tuple[str, str]], answered: str) -> str:
    """``Desk (http://…:8081) did not answer (connection refused); Lab box (http://…:8082) answered.``"""
    parts = [f"{who} did not answer ({why})" for who, why in failed]
    return "; ".join(parts) + f"; {answered} answered."


def _who(provider: str, model: str) -> str:
    return f"{provider} · {model}"


def switch_text(old_provider: str, old_model: str, new_provider: str, new_model: str) -> str:
    return (f"Switched from {_who(old_provider, old_model)} to {_who(new_provider, new_model)}. "
            "The conversation so far goes along.")


def trim_text(dropped_turns: int, window: int, fits: bool) -> str:
    turns = "1 older turn" if dropped_turns == 1 else f"{dropped_turns} older turns"
    text = f"{turns} left out of what the model sees, to fit its {window:,}-token context window."
    if not fits:
        text += " The latest turn alone is still larger than the window."
    return text


def fallback_text(attempts: list[dict[str, Any]], answered_by: dict[str, Any] | None) -> str:
    """One line for the transcript: who failed and why, and who answered in the end.

    ``attempts`` and ``answered_by`` hold ``provider`` (a display name is best), ``model`` and
    ``endpoint`` (a URL or None); each attempt also its ``error`` kind."""
    failed = "; ".join(f"{_target(a)} failed ({_FAILED_BECAUSE.get(a.get('error') or '', a.get('error'))})"
                       for a in attempts)
    if answered_by is None:
        return f"{failed}; no provider in the chain answered."
    return f"{failed}; answered by {_target(answered_by)}."


def _target(who: dict[str, Any]) -> str:
    text = _who(str(who.get("provider")), str(who.get("model")))
    host = _host(who.get("endpoint"))
    return f"{text} at {host}" if host else text


def _host(url: Any) -> str | None:
    if not url:
        return None
    parts = urlsplit(str(url))
    return parts.netloc or None


def kind_of(message: StoredMessage) -> str | None:
    return (message.meta or {}).get("kind") if message.is_note else None


def last_trim_since_switch(stored: list[StoredMessage]) -> dict[str, Any] | None:
    """The meta of the latest ``trim`` note after the latest ``switch`` note, if any."""
    for message in reversed(stored):
        kind = kind_of(message)
        if kind == SWITCH:
            return None
        if kind == TRIM:
            return message.meta
    return None
