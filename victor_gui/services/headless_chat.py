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
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from victor_gui.config.profiles import Profile, ProfileSet, load_profiles
from victor_gui.config.secrets import (
    PROXY_CREDENTIALS_NAME,
    endpoint_header_name,
    endpoint_key_name,
    usable_keyring,
)
from victor_gui.config.settings import Endpoint, Settings
from victor_gui.errors import (
    AttachmentError,
    ConfigError,
    ModelTakesNoImagesError,
    ProviderError,
    ProviderTimeoutError,
)
from victor_gui.providers import keys
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.catalog import find_spec
from victor_gui.providers.endpoint_access import join_url_userinfo
from victor_gui.services.attachment_draft import ingest_bounded
from victor_gui.services.chat_controller import title_from
from victor_gui.services.chat_session import ChatSession
from victor_gui.services.endpoint_providers import provider_for_endpoint
from victor_gui.services.exit_codes import (
    EXIT_CODE_HELP,
    EXIT_CODES,
    UsageError,
    exit_code_for,
)
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.tool_approvals import ToolApprovals
from victor_gui.services.tool_loop import NO_ASKER_TEXT, ToolChoice, record_from_meta
from victor_gui.services.tool_types import ToolCallState, ToolSource
from victor_gui.storage import open_store
from victor_gui.storage.location import default_data_dir
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)
# Transcript notes the one-shot chat repeats as warnings (the window shows them in the chat).
_SAID_ON_STDERR = frozenset({"documents", "images_left_out", "trim"})

# Issue 17: with no server at all, the way to get one from this CLI (the window offers the same).
GET_A_SERVER = ("No server yet? Get a model and run it: `victor-gui hub search qwen3` finds GGUF models "
                "with their fit on this machine, `victor-gui models download hf:AUTHOR/REPO/FILE` "
                "downloads one, `victor-gui serve PATH` runs it with llama-server; then chat again.")


@dataclass
class ChatRequest:
    """What ``victor-gui chat`` was asked. At most one of ``profile``/``endpoint``/``provider``
    picks the target; none falls back to the settings' default profile, then default provider.

    ``retries`` replaces the provider's retry count (0: fail on the first 429/5xx);
    ``timeout`` bounds the whole turn in seconds. ``settings_path``/``data_dir`` default to the
    app's own (``settings.data_dir``, else the platform's data folder)."""

    prompt: str
    provider: str | None = None
    model: str | None = None
    profile: str | None = None
    endpoint: str | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    retries: int | None = None
    scan_processes: bool = True  # nothing named: look for server processes on other ports too
    save: bool = True
    settings_path: Path | None = None
    data_dir: Path | None = None
    victor_profiles: Path | None = None
    app_profiles: Path | None = None
    # ``--tools NAME[,NAME]``: the MCP servers whose tools the model may call; ``--approve-tools``
    # runs every call (else only those a saved approval allows). ``tool_source`` replaces the
    # MCP host (tests, embedding); None builds it from mcp.json when tools are asked for.
    tools: list[str] = field(default_factory=list)
    approve_tools: bool = False
    tool_source: ToolSource | None = None
    # ``--assistant NAME``: its provider, model, system prompt, parameters and tools fill what
    # the command line left out (services/assistants.py); the file defaults to the one beside
    # the settings. ``sampling``: parameters under the neutral names of providers/params.py.
    assistant: str | None = None
    assistants_path: Path | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    # ``--attach FILE`` (repeatable): images and documents sent with the prompt, as the window does.
    attachments: list[Path] = field(default_factory=list)


@dataclass
class ChatOutcome:
    """How the turn ended: the reply, who gave it, its figures, and the way there."""

    text: str = ""
    reasoning: str = ""
    provider: str | None = None
    model: str | None = None
    endpoint: str | None = None
    endpoint_name: str | None = None
    status: str = "complete"
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    cost: float | None = None
    fallback: list[dict[str, Any]] = field(default_factory=list)
    conversation_id: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: ProviderError | None = None
    # The tool calls of the reply (``--tools``): server, tool, arguments, state, result,
    # duration_s, approved_by; None when no tools were asked for.
    tool_calls: list[dict[str, Any]] | None = None
    # With ``--attach``: the files as stored (AttachmentRef fields) and the passages the reply's
    # documents were retrieved from (empty when they went in whole).
    attachments: list[dict[str, Any]] | None = None
    sources: list[dict[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object (no secrets: errors are redacted by the error tree)."""
        out: dict[str, Any] = {
            "text": self.text, "reasoning": self.reasoning, "provider": self.provider,
            "model": self.model, "endpoint": self.endpoint, "endpoint_name": self.endpoint_name,
            "status": self.status, "usage": self.usage, "timings": self.timings, "cost": self.cost,
            "fallback": self.fallback, "conversation_id": self.conversation_id,
        }
        if self.tool_calls is not None:
            out["tool_calls"] = self.tool_calls
        if self.attachments is not None:
            out["attachments"] = self.attachments
            out["sources"] = self.sources or []
        if self.warnings:
            out["warnings"] = self.warnings
        return out


@dataclass
class _Target:
    """The session to run, and what must be closed after it."""

    session: ChatSession
    endpoint_name: str | None = None
    closers: list[Callable[[], Any]] = field(default_factory=list)


class _PrefetchedKeys:
    """A secret store over keyring values read once, off the event loop (the keyring is a
    blocking call; providers ask for keys while being built on the loop)."""

    def __init__(self, values: dict[str, str | None]) -> None:
        self._values = values

    def get_key(self, provider: str) -> str | None:
        return self._values.get(provider)


def _read_keyring(names: list[str]) -> tuple[dict[str, str | None], str | None]:
    """Keys for ``names`` from the OS keyring; a note instead when no keyring is usable."""
    store, note = usable_keyring()
    if store is None:  # no keyring, or a broken one: the environment variables remain
        return {}, note
    return {name: store.get_key(name) for name in names}, None


def _same_url(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        url = url.strip().rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url
    return norm(a).lower() == norm(b).lower()


class HeadlessChat:
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
        target: _Target | None = None
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

    # -- choosing the target ----------------------------------------------------------------------

    def _session_kwargs(self) -> dict[str, Any]:
        request = self.request
        kwargs: dict[str, Any] = {"on_event": self._event}
        if self.request.tools and self._tool_source is not None:
            # No one to ask here: saved approvals run, --approve-tools runs the rest, others are
            # denied with a sentence the model reads (and a warning on stderr).
            kwargs["tools"] = self._tool_source
            kwargs["approve_tools"] = self.request.approve_tools
            if self._settings_service is not None:
                kwargs["approvals"] = ToolApprovals(self._settings_service)
        if self._settings_service is not None and self._settings_service.settings is not None:
            kwargs["attachment_settings"] = self._settings_service.settings.attachments
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if request.sampling:
            kwargs["sampling"] = dict(request.sampling)
            if request.sampling.get("context_length"):  # sizes the history as well
                kwargs["context_window"] = int(request.sampling["context_length"])
        return kwargs

    def _create(self) -> Callable[..., BaseProvider]:
        """``ProviderRegistry.create`` with ``--retries`` applied."""
        from victor_gui.providers.registry import ProviderRegistry

        retries = self.request.retries

        def create(name: str, **kwargs: Any) -> BaseProvider:
            if retries is not None:
                kwargs["max_retries"] = retries
            return ProviderRegistry.create(name, **kwargs)
        return create

    async def _install_keys(self, names: list[str]) -> None:
        values, note = await asyncio.to_thread(_read_keyring, names)
        if note:  # not a warning on every run: a server without a keyring uses the environment
            log.info("keys from environment variables only: %s", note)
        keys.set_secret_store(_PrefetchedKeys(values))

    async def _target(self, store: ConversationStore, cid: int, settings: Settings) -> _Target:
        request = self.request
        chosen = [n for n, v in (("--profile", request.profile), ("--endpoint", request.endpoint),
                                 ("--provider", request.provider)) if v]
        if len(chosen) > 1:
            raise UsageError(f"Give only one of {', '.join(chosen)}.")
        if request.endpoint:
            return await self._endpoint_target(store, cid, settings, request.endpoint)
        if request.profile:
            return await self._profile_target(store, cid, request.profile)
        if request.provider:
            return await self._provider_target(store, cid, request.provider, settings)
        if settings.default_profile:
            return await self._profile_target(store, cid, settings.default_profile)
        if settings.default_provider:
            return await self._provider_target(store, cid, settings.default_provider, settings)
        found = await self._registry_target(store, cid, settings)
        if found is not None:
            return found
        raise UsageError("No local server answered. Say what should answer: --provider NAME --model M, "
                         "--profile NAME or "
                         "--endpoint NAME|URL (or set a default provider or profile in Settings). "
                         + GET_A_SERVER)

    async def _profile_target(self, store: ConversationStore, cid: int, name: str) -> _Target:
        request = self.request
        found: ProfileSet = await load_profiles(request.victor_profiles, request.app_profiles)
        for error in found.errors:
            self.warnings.append(f"profiles: {error.message}")
        self.warnings.extend(found.warnings)
        profile = found.profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(found.profiles)) or "none"
            problems = "".join(f" ({e.message})" for e in found.errors)
            raise UsageError(f"No profile named {name!r} (known: {known}).{problems}")
        if request.model:
            profile = profile.model_copy(update={"model": request.model})
        if not profile.model:
            raise UsageError(f"The profile {name!r} names no model; give one with --model.")
        await self._install_keys(self._profile_key_names(profile))
        session = ChatSession.from_profile(store, cid, profile, providers=found.providers,
                                           create=self._create(), **self._session_kwargs())
        return _Target(session)

    @staticmethod
    def _profile_key_names(profile: Profile) -> list[str]:
        names = []
        for provider in [profile.provider, *(t.provider for t in profile.fallback)]:
            spec = find_spec(provider)
            names.append(spec.name if spec else provider)
        return names

    async def _provider_target(self, store: ConversationStore, cid: int, name: str,
                               settings: Settings) -> _Target:
        spec = find_spec(name)
        await self._install_keys([spec.name if spec else name])
        model = self.request.model
        if not model and settings.default_model and settings.default_provider == name:
            model = settings.default_model
        if not model and (spec is None or not spec.is_local):
            raise UsageError(f"Name a model with --model (`victor-gui providers --provider {name}` "
                             "lists them).")
        provider = self._create()(name)
        try:
            model = model or await self._first_model(provider)
        except BaseException:
            await provider.close()
            raise
        session = ChatSession(store, cid, provider, model, **self._session_kwargs())
        return _Target(session)

    async def _endpoint_target(self, store: ConversationStore, cid: int, settings: Settings,
                               wanted: str) -> _Target:
        entry = self._find_endpoint(settings, wanted)
        names = [endpoint_key_name(entry.name), PROXY_CREDENTIALS_NAME,
                 *(endpoint_header_name(entry.name, h) for h in entry.secret_headers)]
        values, note = await asyncio.to_thread(_read_keyring, names)
        if note and entry.secret_headers:  # they are sent on every request: say they are missing
            self.warnings.append(f"secret headers of {entry.name} not read: {note}")
        retries = self.request.retries
        # The proxy's user:pass lives in the keyring, not in settings.yaml.
        proxy = settings.proxy and join_url_userinfo(settings.proxy, values.get(PROXY_CREDENTIALS_NAME))
        provider, client = provider_for_endpoint(
            entry, secrets=values.get, proxy=proxy, max_retries=1 if retries is None else retries)
        model = self.request.model
        try:
            if not model:
                model = await self._first_model(provider)
        except BaseException:
            await provider.close()
            await client.aclose()
            raise
        session = ChatSession(store, cid, provider, model, **self._session_kwargs())
        return _Target(session, entry.name, [client.aclose])

    async def _registry_target(self, store: ConversationStore, cid: int,
                               settings: Settings) -> _Target | None:
        """Nothing named what should answer: the first working server of the registry, as the
        window's picker would choose it (hand-added endpoints first, then the seed's variables
        and the default ports), after one probe cycle. None when no server answers."""
        from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
        from victor_gui.services.server_registry import probe_registry_once

        service = SettingsService(self.request.settings_path)
        async with make_client(PROBE_TIMEOUTS) as client:
            members = await probe_registry_once(client, settings=service,
                                                scan_processes=self.request.scan_processes)
        working = [m for m in members if m.status is not None and m.status.state.value == "up"
                   and (m.setting is not None or find_spec(m.kind) is not None)]
        if not working:
            return None
        member = working[0]
        if member.setting is not None:
            return await self._endpoint_target(store, cid, settings, member.setting.name)
        provider = self._create()(member.kind, base_url=member.base_url)
        try:
            model = self.request.model or await self._first_model(provider)
        except BaseException:
            await provider.close()
            raise
        session = ChatSession(store, cid, provider, model, **self._session_kwargs())
        return _Target(session)

    @staticmethod
    def _find_endpoint(settings: Settings, wanted: str) -> Endpoint:
        """A configured endpoint by name (any case) or URL; a URL nobody configured is taken as
        an ad-hoc OpenAI-compatible server without a key."""
        for entry in settings.endpoints:
            if entry.name == wanted or entry.name.lower() == wanted.lower():
                return entry
        if wanted.startswith(("http://", "https://")):
            for entry in settings.endpoints:
                if _same_url(entry.url, wanted):
                    return entry
            host = urlsplit(wanted).netloc or wanted
            return Endpoint(name=host, kind="openai-compatible", url=wanted)
        known = ", ".join(e.name for e in settings.endpoints) or "none"
        raise UsageError(f"No endpoint named {wanted!r} in settings (known: {known}); "
                         "give its name or an http(s):// URL.")

    @staticmethod
    async def _first_model(provider: BaseProvider) -> str:
        """The model a local server has loaded (else its first), when none was named."""
        models = await provider.list_models()
        if not models:
            raise UsageError(f"{provider.name} lists no models; name one with --model.")
        loaded = [m for m in models if m.loaded]
        return (loaded or models)[0].id


async def with_assistant(request: ChatRequest) -> ChatRequest:
    """``request`` with the assistant it names filling what the command line left out: a
    provider and model (unless ``--provider``/``--profile``/``--endpoint`` chose), the system
    prompt, temperature, max tokens, the other parameters and the tools. Raises
    :class:`UsageError` when there is no such assistant (naming the ones there are)."""
    from dataclasses import replace

    from victor_gui.config.settings import settings_path
    from victor_gui.services.assistants import FILE_NAME, Assistants

    path = request.assistants_path or (request.settings_path or settings_path()).with_name(FILE_NAME)
    assistants = Assistants(path)
    wanted = (request.assistant or "").strip().lower()
    known = await assistants.load()
    assistant = next((a for a in known if a.name.lower() == wanted), None)
    if assistant is None:
        names = ", ".join(a.name for a in known) or "none yet (save one in the window)"
        raise UsageError(f"There is no assistant named {request.assistant!r} in {path}. Assistants: {names}.")
    chose = request.provider or request.profile or request.endpoint
    params = dict(assistant.params)
    temperature, max_tokens = params.pop("temperature", None), params.pop("max_tokens", None)
    return replace(
        request,
        provider=request.provider or (None if chose else assistant.provider),
        model=request.model or (None if chose else assistant.model),
        system=request.system if request.system is not None else (assistant.system_prompt or None),
        temperature=request.temperature if request.temperature is not None else temperature,
        max_tokens=request.max_tokens if request.max_tokens is not None else max_tokens,
        sampling={**params, **request.sampling},
        tools=request.tools or list(assistant.tools or []),
    )


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
