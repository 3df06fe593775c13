"""Transcript notes: what the chat shows between turns but never sends to a model.

A note is a stored message with role ``note`` (:data:`~victor_gui.storage.models.NOTE_ROLE`)
and ``meta["kind"]``:

* ``switch``: the provider or model changed here. ``meta["from"]``/``meta["to"]`` hold
  ``{provider, model, endpoint}``.
* ``trim``: the next request left out the oldest turns to fit the model's context window.
  ``meta``: ``dropped_turns``, ``context_window``, ``source`` (``server``/``table``/``default``),
  ``estimated_tokens``, ``budget``, ``fits``.
* ``failover``: the chosen target could not answer before any output, and the next one in its
  chain did (another endpoint of the same group, or the profile's fallback), or none did.
  ``meta``: ``failed`` (``[{label, model, endpoint, error, why}]``), ``answered`` (the words
  naming who answered, or None). Written by :class:`~victor_gui.services.chat_session.ChatSession`
  alone, so the window and ``victor-gui chat`` store the same note.

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
FAILOVER = "failover"

# Why a target was passed over, in words (by ``ProviderError.kind``), when the OS error says nothing.
_FAILED_BECAUSE = {
    "connection": "could not connect",
    "timeout": "timed out",
    "rate_limit": "rate-limited",
    "server": "server error",
    "loading": "still loading the model",
    "circuit_open": "failing repeatedly, paused",
}

__all__ = ["FAILOVER", "NOTE_ROLE", "SWITCH", "TRIM", "failover_text", "failure_reason",
           "last_trim_since_switch", "switch_text", "target_words", "trim_text"]


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
    if kind in _FAILED_BECAUSE:
        return _FAILED_BECAUSE[kind]
    return str(kind).replace("_", " ") if kind else type(error).__name__


def failover_text(failed: list[tuple[str, str]], answered: str | None) -> str:
    """``Desk (http://…:8081) did not answer (connection refused); Lab box (http://…:8082) answered.``
    (``answered`` None: ``…; no target answered.``)"""
    parts = [f"{who} did not answer ({why})" for who, why in failed]
    end = f"{answered} answered." if answered else "no target answered."
    return "; ".join(parts) + f"; {end}"


def target_words(label: str, model: str | None, endpoint: str | None) -> str:
    """How a note names one target: its label (a group member's label already names its URL),
    else ``label · model at host``."""
    host = _host(endpoint)
    if host and host in label:
        return label
    text = _who(label, model or "")
    return f"{text} at {host}" if host else text


def _who(provider: str, model: str) -> str:
    return f"{provider} · {model}"


def switch_text(old_provider: str, old_model: str, new_provider: str, new_model: str) -> str:
    return (f"Switched from {_who(old_provider, old_model)} to {_who(new_provider, new_model)}. "
            "The conversation so far goes along.")


# Why the window has its size, said in a trim note (by ContextWindow.source).
_WINDOW_WHY = {
    "loaded": " The server loaded the model with this context (it reports {window:,} tokens).",
    "plan": " That is the context chosen for this machine and sent to Ollama as num_ctx.",
    "trained": " The model was trained for {window:,} tokens; the server runs it with no more.",
}


def trim_text(dropped_turns: int, window: int, fits: bool, source: str = "") -> str:
    turns = "1 older turn" if dropped_turns == 1 else f"{dropped_turns} older turns"
    text = f"{turns} left out of what the model sees, to fit its {window:,}-token context window."
    text += _WINDOW_WHY.get(source, "").format(window=window)
    if not fits:
        text += " The latest turn alone is still larger than the window."
    return text


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
