"""``/usage``: tokens and cost per chat, per provider (and model) and per day, from the store.

Costs are the ones stored with each reply: a reply whose cost was not computed (its session had
cost tracking off, see :class:`~victor_gui.services.chat_session.ChatSession`, or no price was
known) adds its tokens but no cost, and is counted in ``uncosted`` so the UI can say the total
is incomplete instead of showing a misleading figure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from victor_gui.storage.store import ConversationStore
from victor_gui.storage.usage import UsageRow

Since = float | dt.date | dt.datetime | None


def _epoch(since: Since) -> float | None:
    if since is None or isinstance(since, float | int):
        return since
    if isinstance(since, dt.datetime):
        return since.timestamp()
    return dt.datetime.combine(since, dt.time()).timestamp()  # local midnight of that day


async def usage_summary(
    store: ConversationStore,
    *,
    conversation_id: int | None = None,
    since: Since = None,
    group_by: str = "provider",
) -> list[UsageRow]:
    """Totals grouped by ``chat``, ``provider``, ``model`` (``provider/model``), ``day`` or ``all``.

    ``since``: a timestamp, a datetime, or a date (from its local midnight).
    """
    return await store.usage(group_by, conversation_id=conversation_id, since=_epoch(since))


@dataclass(frozen=True)
class UsageReport:
    """Everything ``/usage`` shows."""

    total: UsageRow | None
    by_chat: list[UsageRow]
    by_provider: list[UsageRow]
    by_model: list[UsageRow]
    by_day: list[UsageRow]


async def usage_report(
    store: ConversationStore, *, conversation_id: int | None = None, since: Since = None
) -> UsageReport:
    """The totals of :func:`usage_summary` for every grouping at once."""

    async def rows(group: str) -> list[UsageRow]:
        return await usage_summary(store, conversation_id=conversation_id, since=since, group_by=group)

    total = await rows("all")
    by_day = sorted(await rows("day"), key=lambda r: r.key)
    return UsageReport(total[0] if total else None, await rows("chat"), await rows("provider"),
                       await rows("model"), by_day)


def format_cost(row: UsageRow) -> str:
    """``$0.0123``, ``$0.0123 + unknown`` or ``unknown``."""
    if row.cost is None:
        return "unknown" if row.uncosted else "$0"
    text = f"${row.cost:.4f}"
    return f"{text} (+{row.uncosted} without a price)" if row.uncosted else text


def format_usage(report: UsageReport) -> str:
    """The report as plain text, as the seed's ``/usage`` prints it."""
    if report.total is None:
        return "No usage recorded yet."
    lines = []
    for title, rows in (("Total", [report.total]), ("By chat", report.by_chat),
                        ("By provider", report.by_provider), ("By model", report.by_model),
                        ("By day", report.by_day)):
        lines.append(title)
        for row in rows:
            name = "all" if title == "Total" else row.label
            lines.append(f"  {name}: {row.replies} replies, {row.prompt_tokens} in "
                         f"({row.cached_tokens} cached), {row.completion_tokens} out, {format_cost(row)}")
    return "\n".join(lines)
