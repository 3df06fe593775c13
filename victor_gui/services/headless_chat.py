"""One chat turn without the window: what ``victor-gui chat`` runs (Qt-free).

It picks the provider the way the window does — a profile (Victor's ``~/.victor/profiles.yaml``
and the app's own, with the profile's fallback chain), a provider by any seed name or alias, or
an endpoint from ``settings.yaml`` (its key, secret headers and TLS trust from the keyring) or
an ad-hoc URL — then streams one reply through :class:`~victor_gui.services.chat_session.ChatSession`,
the one streaming path of the app. So the exchange lands in the same SQLite history the window
shows, with the same provider, model, timings, tokens and cost per reply. When the chain fell
back, a ``failover`` note (:mod:`.notes`) says who failed and who answered.

``save=False`` runs the very same session against a throwaway store in a temporary folder, so
nothing is written to the user's history and the code path is not a second one.

Failures are typed errors (:mod:`victor_gui.errors`); :mod:`.exit_codes` maps them to the
distinct exit codes of the command.

The request and outcome are :mod:`.headless_request`; choosing what answers is
:mod:`.headless_target`; this module runs the turn.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from victor_gui.config.secrets import usable_keyring
from victor_gui.config.settings import Settings
from victor_gui.errors import AttachmentError, ConfigError, ModelTakesNoImagesError, ProviderTimeoutError
from victor_gui.services.attachment_draft import ingest_bounded
from victor_gui.services.chat_controller import title_from
from victor_gui.services.exit_codes import EXIT_CODE_HELP, EXIT_CODES, UsageError, exit_code_for
from victor_gui.services.headless_request import ChatOutcome, ChatRequest, with_assistant
from victor_gui.services.headless_target import SessionTarget, TargetChoiceMixin
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_loop import NO_ASKER_TEXT, ToolChoice, record_from_meta
from victor_gui.services.tool_types import ToolCallState, ToolSource
from victor_gui.storage import open_store
from victor_gui.storage.location import default_data_dir
from victor_gui.storage.store import ConversationStore

# Transcript notes the one-shot chat repeats as warnings (the window shows them in the chat).
_SAID_ON_STDERR = frozenset({"documents", "images_left_out", "trim"})


class HeadlessChat(TargetChoiceMixin):
    """Runs one :class:`ChatRequest`; ``on_text``/``on_reasoning`` get each piece as it arrives."""

    def __init__(self, request: ChatRequest, *, on_text: Callable[[str], None] | None = None,
                 on_reasoning: Callable[[str], None] | None = None) -> None:
        self.request = request
        self.on_text = on_text
        self.on_reasoning = on_reasoning
        self.warnings: list[str] = []
        self._fallback_events: list[str] = []
        self._settings_service: SettingsService | None = None
        self._tool_source: ToolSource | None = None

    # -- the turn ---------------------------------------------------------------------------------

    async def run(self) -> ChatOutcome:
        """Send the prompt, stream the reply, store it.

        A reply that failed comes back with ``status == "error"`` and ``error`` set (and the
        fallback path so far); a failure before any reply began (no such profile, no key, a
        timeout) is raised as its typed error."""
        request = self.request
        if not request.prompt.strip():
            raise UsageError("The prompt is empty: give it as an argument or on standard input.")
        if request.assistant:
            request = self.request = await with_assistant(request)
        settings_service = SettingsService(request.settings_path)
        self._settings_service = settings_service
        settings = await settings_service.load()
        if settings_service.load_error is not None:
            self.warnings.append(f"settings ignored: {settings_service.load_error.message}")
        self.warnings += [f"setting left out: {p.message}" for p in settings_service.dropped]
        tempdir: tempfile.TemporaryDirectory[str] | None = None
        if request.save:
            folder = request.data_dir or (Path(settings.data_dir) if settings.data_dir else None)
            if folder is None:
                folder = await asyncio.to_thread(default_data_dir)
        else:  # the same session, against a store that is thrown away
            tempdir = tempfile.TemporaryDirectory(prefix="victor-gui-chat-")
            folder = Path(tempdir.name)
        store, notice = await open_store(folder)
        if notice is not None:  # a file kept read-only, or moved aside: say it beside the answer
            self.warnings.append(notice.message)
        try:
            return await self._run_in(store, settings)
        finally:
            await store.close()
            if tempdir is not None:
                await asyncio.to_thread(tempdir.cleanup)

    async def _run_in(self, store: ConversationStore, settings: Settings) -> ChatOutcome:
        request = self.request
        # Files first: one that cannot be read ends the run before a chat is made or a server asked.
        refs = []
        try:
            for path in request.attachments:
                refs.append(await ingest_bounded(store, path))
        except AttachmentError:
            await store.discard_attachments([r.sha256 for r in refs])  # the files before this one
            raise
        conv = await store.create_conversation(title_from(request.prompt), system_prompt=request.system)
        started = time.perf_counter()
        target: SessionTarget | None = None
        closers: list[Callable[[], Any]] = []
        try:
            # --timeout bounds the whole turn: finding the model, connecting, and the reply.
            async with asyncio.timeout(request.timeout):
                if request.tools:
                    closers += await self._open_tools()
                target = await self._target(store, conv.id, settings)
                if request.tools:
                    await target.session.set_tool_choice(ToolChoice(tuple(request.tools)))
                result = await target.session.send(request.prompt, refs)
        except (AttachmentError, ModelTakesNoImagesError):
            # Refused before anything was stored: the empty chat made for it goes too.
            if not await store.get_messages(conv.id):
                await store.delete_conversation(conv.id)
            await store.discard_attachments([r.sha256 for r in refs])
            raise
        except TimeoutError:
            raise ProviderTimeoutError(
                f"No complete answer within {request.timeout:g} s (--timeout).") from None
        finally:
            if target is not None:
                await target.session.close()
                for close in target.closers:
                    await close()
            for close in closers:
                await close()
        wall_ms = (time.perf_counter() - started) * 1000
        stored = await store.get_message(result.message_id)
        assert stored is not None
        meta = stored.meta or {}
        attempts: list[dict[str, Any]] = list((meta.get("fallback") or {}).get("attempts") or [])
        answered = None if result.status == "error" else {
            "provider": stored.provider, "model": stored.model, "endpoint": stored.endpoint}
        outcome = ChatOutcome(
            text=stored.content, reasoning=stored.reasoning, provider=stored.provider,
            model=stored.model, endpoint=stored.endpoint, endpoint_name=target.endpoint_name,
            status=result.status,
            usage={"prompt_tokens": stored.prompt_tokens, "completion_tokens": stored.completion_tokens,
                   "cached_tokens": stored.cached_tokens},
            timings={"ttft_ms": stored.ttft_ms, "tokens_per_second": stored.tokens_per_second,
                     "total_ms": round(wall_ms, 1)},
            cost=stored.cost,
            fallback=[{"target": f"{a.get('provider')} · {a.get('model')}", **a} for a in attempts],
            conversation_id=conv.id if request.save else None,
            warnings=self.warnings, error=result.error)
        if request.tools:
            outcome.tool_calls = await self._tool_calls(store, conv.id)
        if request.attachments:
            outcome.attachments = [ref.to_json() for ref in refs]
            outcome.sources = list(meta.get("sources") or [])
        if answered is not None and attempts:
            outcome.fallback.append({"target": f"{answered['provider']} · {answered['model']}",
                                     **answered, "error": None, "message": None})
        return outcome

    async def _open_tools(self) -> list[Callable[[], Any]]:
        """The tool source for ``--tools`` (the MCP host unless one was given); its closers."""
        if self.request.tool_source is not None:
            self._tool_source = self.request.tool_source
            return []
        source, close = await build_tool_source(self.request.tools or ())
        self._tool_source = source
        return [close]

    async def _tool_calls(self, store: ConversationStore, cid: int) -> list[dict[str, Any]]:
        """The reply's tool calls as ``--json`` lists them; a denied one is also a warning."""
        calls = []
        for m in await store.get_messages(cid):
            record = record_from_meta(m.meta) if m.role == "tool" else None
            if record is None:
                continue
            calls.append({"server": record.server, "tool": record.tool, "arguments": record.arguments,
                          "state": record.state.value, "result": m.content,
                          "duration_s": record.duration_s, "approved_by": record.approved_by})
            if record.state is ToolCallState.DENIED:
                why = ("not allowed by a saved approval; --approve-tools runs it"
                       if m.content == NO_ASKER_TEXT else "denied")
                self.warnings.append(f"tool {record.server}/{record.tool} did not run: {why}")
        return calls

    def _event(self, event: ReplyEvent) -> None:
        if event.kind == "delta":
            if event.reasoning and self.on_reasoning is not None:
                self.on_reasoning(event.reasoning)
            if event.text and self.on_text is not None:
                self.on_text(event.text)
        elif event.kind == "fallback":
            self._fallback_events.append(event.text)
        elif event.kind == "note" and (event.meta or {}).get("kind") in _SAID_ON_STDERR:
            self.warnings.append(event.text)  # never silently: a trimmed history, files left out


async def build_tool_source(names: Sequence[str] = ()) -> tuple[ToolSource, Callable[[], Any]]:
    """The MCP host over the servers of ``mcp.json`` (the app's config folder; secret headers
    and variables from the keyring), with the coroutine function that stops it. A
    :class:`UsageError` names a server in ``names`` that mcp.json does not hold (or holds
    broken), or says the file cannot be used."""
    from victor_gui.services.mcp_host import McpHost

    keyring, _note = await asyncio.to_thread(usable_keyring)
    try:
        host = await McpHost.from_config(secrets=keyring)
    except ConfigError as exc:
        raise UsageError(f"--tools: {exc}") from exc
    known = {status.name for status in host.statuses()}
    for name in names:
        if name in host.problems:
            raise UsageError(f"--tools: the MCP server {name!r} in {host.config_path} is not usable: "
                             f"{host.problems[name]}")
        if name not in known:
            raise UsageError(f"--tools: no MCP server named {name!r} in {host.config_path} "
                             f"(known: {', '.join(sorted(known)) or 'none'})")
    return host, host.aclose


__all__ = [
    "EXIT_CODES",
    "EXIT_CODE_HELP",
    "ChatOutcome",
    "ChatRequest",
    "HeadlessChat",
    "UsageError",
    "build_tool_source",
    "exit_code_for",
]
