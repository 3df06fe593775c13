"""How stored messages look in the transcript: titles, the stats line, notes.

Pure formatting over :class:`~victor_gui.storage.models.StoredMessage` (no Qt), so the live
stream and a reopened chat show the same words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from victor_gui.storage.models import StoredMessage

# Messages rendered when a chat opens; older ones come a page at a time on request.
PAGE = 60


def display_provider(m: StoredMessage) -> str | None:
    """Who answered, as people call it: the target's name the session stored ("Desk box",
    "llama.cpp"), else the catalog's display name of the provider, never an internal id."""
    from victor_gui.providers.catalog import find_spec

    label = (m.meta or {}).get("answered_by")
    if isinstance(label, str) and label:
        return label
    spec = find_spec(m.provider) if m.provider else None
    return spec.display_name if spec is not None else m.provider


def title_of(m: StoredMessage) -> str:
    """``You`` for the user; ``provider · model`` for a reply."""
    if m.role == "user":
        return "You"
    who = " · ".join(x for x in (display_provider(m), m.model) if x)
    return who or m.role.capitalize()


def stats_line(m: StoredMessage) -> str:
    """``provider · model · TTFT 120 ms · 42.0 tok/s · 256 tokens · $0.0012`` (unknown parts
    left out; local replies carry no cost)."""
    bits: list[str] = []
    who = " · ".join(x for x in (display_provider(m), m.model) if x)
    if who:
        bits.append(who)
    if m.ttft_ms is not None:
        bits.append(f"TTFT {m.ttft_ms:.0f} ms")
    if m.tokens_per_second:
        bits.append(f"{m.tokens_per_second:.1f} tok/s")
    if m.completion_tokens is not None:
        bits.append(f"{m.completion_tokens} tokens")
    if m.cost:
        bits.append(f"${m.cost:.4f}")
    if m.status == "interrupted":
        bits.append("stopped")
    return " · ".join(bits)


def live_stats(state: Any) -> str:
    """Stats of a reply still streaming (a :class:`~victor_gui.services.generation.ReplyState`)."""
    bits = [f"{state.provider} · {state.model}"]
    if state.ttft_ms is not None:
        bits.append(f"TTFT {state.ttft_ms:.0f} ms")
    if (tps := state.tokens_per_second) is not None:
        bits.append(f"{tps:.1f} tok/s")
    bits.append(f"{state.completion_tokens} tokens")
    return " · ".join(bits)
