"""The one registry of servers (Qt-free): every endpoint the app knows, where it came from, its
live status, and the chat targets built from them.

:class:`ServerRegistry` is the :class:`~victor_gui.services.endpoints_service.EndpointsService`
(health monitor, settings sync, GPU report: the dashboard keeps rendering it) plus what the chat,
the compare panes and the Ctrl+K picker need:

* **origins** — hand-added (``settings.yaml`` through the SettingsService), the seed's variables
  (``OLLAMA_HOST``, ``OLLAMA_ENDPOINTS``, ``VICTOR_LM_STUDIO_HOST``, ``LMSTUDIO_ENDPOINTS``,
  ``VICTOR_VLLM_HOST``, ``VICTOR_LLAMACPP_HOST``), default ports (both read from the catalog's
  local rows) and the process scan;
* **one probe per endpoint per cycle** — discovery only works out *candidates* (variables,
  defaults, listening server processes) and hands them to the health monitor, which probes each
  once; the chat reads model lists from the monitor's statuses instead of asking again;
* **hiding** — a default or discovered endpoint the user hides is saved in
  ``Settings.hidden_endpoints`` (through :meth:`SettingsService.update`) and stays hidden;
* **chat targets** (:meth:`ServerRegistry.targets`) — hand-added endpoints first (endpoints
  sharing a ``group`` are one target), then the env/default endpoints of each kind (one target
  per kind: its variables' addresses, then its default port), then servers found running on
  other ports. The endpoints of one target fail over in that order (see
  :mod:`victor_gui.services.fallback`).

Events (``subscribe(listener) -> unsubscribe``, ``listener(event, payload)``): those of
EndpointsService, and ``"targets"`` (payload None) whenever the targets or one of their
states changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from victor_gui.config.settings import Endpoint as EndpointSetting
from victor_gui.providers.catalog import find_spec, local_specs
from victor_gui.providers.endpoint_access import is_local_url
from victor_gui.providers.types import ModelInfo
from victor_gui.servers.discovery import candidate_endpoints, find_process_endpoints, server_root
from victor_gui.servers.status import DISPLAY_NAMES, Endpoint, EndpointState, EndpointStatus, ServerKind
from victor_gui.services.endpoint_providers import endpoint_base_url
from victor_gui.services.endpoints_service import SETTINGS_SOURCE, EndpointsService

log = logging.getLogger(__name__)

ORIGIN_SETTINGS = "settings"
ORIGIN_ENV = "env"
ORIGIN_DEFAULT = "default"
ORIGIN_PROCESS = "process"
ORIGIN_SESSION = "session"

# Status dot colours, by state (the picker and the dashboard say the same thing).
DOT_UP, DOT_BUSY, DOT_DOWN, DOT_UNKNOWN = "green", "amber", "red", "grey"
_DOTS: dict[EndpointState, str] = {
    EndpointState.UP: DOT_UP,
    EndpointState.LOADING: DOT_BUSY,
    EndpointState.DEGRADED: DOT_BUSY,
    EndpointState.DOWN: DOT_DOWN,
    EndpointState.UNAUTHORIZED: DOT_DOWN,
    EndpointState.NOT_INFERENCE: DOT_DOWN,
    EndpointState.ERROR: DOT_DOWN,
    EndpointState.UNKNOWN: DOT_UNKNOWN,
}
# Which member answers first: working ones, then not yet probed, then failing ones.
_RANK: dict[EndpointState, int] = {
    EndpointState.UP: 0, EndpointState.DEGRADED: 1, EndpointState.LOADING: 1, EndpointState.UNKNOWN: 2,
    EndpointState.UNAUTHORIZED: 3, EndpointState.NOT_INFERENCE: 4, EndpointState.DOWN: 4,
    EndpointState.ERROR: 4,
}


def origin_of(source: str) -> str:
    """The origin of a monitor source string (``settings``, ``env:VAR``, ``default``, ``process:x``)."""
    head = source.split(":", 1)[0]
    return {"settings": ORIGIN_SETTINGS, "user": ORIGIN_SETTINGS, "env": ORIGIN_ENV,
            "default": ORIGIN_DEFAULT, "process": ORIGIN_PROCESS}.get(head, ORIGIN_SESSION)


@dataclass(frozen=True)
class RegisteredEndpoint:
    """One endpoint of the registry: where it is, what it is called, where it came from, and its
    latest status (None before the monitor saw it)."""

    key: str  # the server root, the monitor's key
    name: str  # what people read: the hand-added name, or "llama.cpp", "Ollama" ...
    kind: str  # catalog provider name ("llamacpp") or endpoint kind ("openai-compatible")
    origin: str
    source: str
    target_id: str
    setting: EndpointSetting | None = None
    status: EndpointStatus | None = None

    @property
    def base_url(self) -> str:
        """The base URL a provider is given (``/v1`` for OpenAI-speaking kinds)."""
        if self.setting is not None:
            return endpoint_base_url(self.setting)
        spec = find_spec(self.kind)
        return self.key if spec is not None and spec.protocol == "ollama" else self.key + "/v1"

    @property
    def state(self) -> EndpointState:
        return self.status.state if self.status is not None else EndpointState.UNKNOWN

    @property
    def dot(self) -> str:
        return _DOTS[self.state]

    @property
    def diagnosis(self) -> str:
        return self.status.diagnosis if self.status is not None else ""

    @property
    def label(self) -> str:
        """``Name (http://host:port)``: for notes that must say which server of a group answered."""
        return f"{self.name} ({self.key})"

    @property
    def is_local(self) -> bool:
        return is_local_url(self.key)


@dataclass(frozen=True)
class ChatTarget:
    """What the chat picker offers for local and hand-added servers: one name, one or more
    endpoints (in failover order as configured)."""

    id: str
    name: str
    kind: str
    origin: str
    members: tuple[RegisteredEndpoint, ...]

    @property
    def ordered(self) -> tuple[RegisteredEndpoint, ...]:
        """Members in answering order: working ones first, list order within a rank."""
        return tuple(sorted(self.members, key=lambda m: _RANK[m.state]))

    @property
    def state(self) -> EndpointState:
        """The best member's state."""
        return self.ordered[0].state if self.members else EndpointState.UNKNOWN

    @property
    def dot(self) -> str:
        return _DOTS[self.state]

    @property
    def working(self) -> bool:
        return self.state in (EndpointState.UP, EndpointState.DEGRADED, EndpointState.LOADING)

    @property
    def diagnosis(self) -> str:
        """Why the target cannot answer: its members' diagnoses (empty when one works)."""
        if self.working:
            return ""
        said = [m.diagnosis for m in self.members if m.diagnosis]
        return " ".join(dict.fromkeys(said))

    @property
    def is_local(self) -> bool:
        return all(m.is_local for m in self.members)

    @property
    def folds(self) -> bool:
        """A default port nothing answers on: shown in the one "not running" line."""
        return (self.origin == ORIGIN_DEFAULT and self.state is EndpointState.DOWN
                and all(m.origin == ORIGIN_DEFAULT for m in self.members))


def _kind_name(kind: ServerKind | None) -> str | None:
    return kind.value if kind is not None and kind.value in {s.name for s in local_specs()} else None


class ServerRegistry(EndpointsService):
    """Every server endpoint with its origin and live status, and the chat targets over them.

    Same construction as :class:`EndpointsService`, plus ``env`` (the environment to read the
    seed's variables from; None: ``os.environ``) and ``scan_processes`` (look for server
    processes on other ports). ``discover=False`` watches only the hand-added endpoints.
    """

    def __init__(self, client: httpx.AsyncClient, *, env: Mapping[str, str] | None = None,
                 discover: bool = True, scan_processes: bool = True, include_defaults: bool = True,
                 **options: Any) -> None:
        options.setdefault("discover_fn", None)  # discovery is the registry's own (no probes)
        super().__init__(client, **options)
        self._env = env
        self._discover_candidates = discover
        self._scan_processes = scan_processes
        self._include_defaults = include_defaults
        self._scanning: Any = None  # the process scan's task, while it runs
        self._last_targets: tuple[Any, ...] = ()
        self.subscribe(self._maybe_targets_changed)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load settings, watch the hand-added endpoints, then add the env/default candidates at
        once (no probe of their own: the monitor's first probe is the only one) and the process
        scan's in the background."""
        if self.started:
            return
        await super().start()
        if self.closed or not self._discover_candidates:
            return
        self._add_candidates(candidate_endpoints(env=self._env, include_defaults=self._include_defaults))
        self._emit("endpoints", None)
        if self._scan_processes:
            self._scanning = self.spawn(self._scan())

    async def first_cycle(self, limit_s: float = 10.0) -> None:
        """Wait until the process scan is done and every watched endpoint has been probed once
        (the headless commands read one cycle, then close). Never probes anything itself."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        if self._scanning is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._scanning), limit_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.monitor.probed(list(self.monitor.statuses)),
                                   max(0.0, deadline - loop.time()))

    def _add_candidates(self, found: list[Endpoint]) -> None:
        known, hidden = set(self.monitor.statuses), self.hidden
        for endpoint in found:
            if endpoint.base_url not in known and endpoint.base_url not in hidden:
                self.monitor.add_endpoint(endpoint)  # hidden ones are not even probed

    async def _scan(self) -> None:
        self.discovering = True
        try:
            found = await find_process_endpoints()
        except Exception as exc:  # the scan is best effort
            log.exception("process scan failed")
            self._emit("error", f"Looking for local servers failed: {type(exc).__name__}")
            return
        finally:
            self.discovering = False
        self._add_candidates(candidate_endpoints(env={}, include_defaults=False, extra=found))
        self._emit("endpoints", None)

    def _maybe_targets_changed(self, event: str, payload: Any) -> None:
        if event == "status" and isinstance(payload, EndpointStatus):
            status = payload
            # A port a server process holds that turned out to speak something else is dropped.
            if status.source.startswith("process:") and status.state is not EndpointState.UNKNOWN and (
                    not status.is_inference_server or status.state is EndpointState.DOWN):
                self.spawn(self.monitor.remove_endpoint(status.base_url))
        if event not in ("status", "endpoints"):
            return
        signature = tuple((t.id, t.name, tuple((m.key, m.state) for m in t.members)) for t in self.targets())
        if signature != self._last_targets:
            self._last_targets = signature
            self._emit("targets", None)

    # -- what the dashboard lists --------------------------------------------------------------

    @property
    def statuses(self) -> list[EndpointStatus]:
        """The dashboard's cards: hand-added first, hidden ones left out, and default ports
        nothing answers on left to the one "not running" line (:attr:`not_running`)."""
        folded = {m.key for t in self.targets() if t.folds for m in t.members}
        return [m.status if m.status is not None else EndpointStatus(m.key, source=m.source)
                for m in self.endpoints() if m.key not in folded]

    @property
    def not_running(self) -> list[RegisteredEndpoint]:
        """Default ports nothing answers on (one folded line in the dashboard and the picker)."""
        return [m for t in self.targets() if t.folds for m in t.members]

    async def remove_endpoint(self, url: str) -> None:
        """A hand-added endpoint is removed from settings.yaml; a default or discovered one is
        hidden (saved, so it stays hidden after a restart) and no longer probed."""
        if self.setting_for(url) is not None:
            await super().remove_endpoint(url)
            return
        await self.hide(url)

    # -- hiding ---------------------------------------------------------------------------------

    @property
    def hidden(self) -> set[str]:
        return {server_root(u) for u in self._settings.hidden_endpoints}

    async def hide(self, url: str) -> None:
        """Hide a default or discovered endpoint (saved: it stays hidden after a restart)."""
        key = server_root(url)
        if self.setting_for(key) is not None:
            raise ValueError("a hand-added endpoint is removed, not hidden")
        await self.settings_service.update(
            lambda current: {"hidden_endpoints": sorted({*current.hidden_endpoints, key})})
        await self.monitor.remove_endpoint(key)
        self._emit("endpoints", None)

    async def unhide(self, url: str) -> None:
        key = server_root(url)
        await self.settings_service.update(
            lambda current: {"hidden_endpoints": [u for u in current.hidden_endpoints
                                                  if server_root(u) != key]})
        if self.started and self._discover_candidates:
            self._add_candidates([e for e in candidate_endpoints(env=self._env) if e.base_url == key])
        self._emit("endpoints", None)

    # -- the registry ---------------------------------------------------------------------------

    def endpoints(self) -> list[RegisteredEndpoint]:
        """Every endpoint not hidden: hand-added first (settings order), then the rest."""
        statuses = self.monitor.statuses
        hidden = self.hidden
        out: list[RegisteredEndpoint] = []
        seen: set[str] = set()
        for entry in self.configured:
            key = server_root(entry.url)
            if not entry.enabled or key in seen:
                continue
            seen.add(key)
            out.append(RegisteredEndpoint(key, entry.name, entry.kind, ORIGIN_SETTINGS, SETTINGS_SOURCE,
                                          "endpoint:" + entry.group_name, entry, statuses.get(key)))
        rest: list[RegisteredEndpoint] = []
        for key, status in statuses.items():
            if key in seen or key in hidden:
                continue
            seen.add(key)
            origin = origin_of(status.source)
            endpoint = self.monitor_endpoint(key)
            hint = endpoint.kind_hint if endpoint is not None else None
            kind = _kind_name(hint) or _kind_name(status.kind) or "openai-compatible"
            spec = find_spec(kind)
            name = spec.display_name if spec is not None else DISPLAY_NAMES.get(status.kind, key)
            if origin in (ORIGIN_ENV, ORIGIN_DEFAULT):
                target = kind
            else:
                target = f"{kind}@{key.split('://', 1)[-1]}"
                name = f"{name} {key.split('://', 1)[-1]}"
            rest.append(RegisteredEndpoint(key, name, kind, origin, status.source, target, None, status))
        order = {ORIGIN_ENV: 0, ORIGIN_DEFAULT: 0, ORIGIN_PROCESS: 1, ORIGIN_SESSION: 2}
        kinds = [s.name for s in local_specs()]
        rest.sort(key=lambda m: (order.get(m.origin, 3), kinds.index(m.kind) if m.kind in kinds else 99,
                                 m.origin != ORIGIN_ENV))
        return out + rest

    def watch_engine(self, url: str, kind: ServerKind | None, source: str) -> None:
        """Watch a server the app started itself (:mod:`.engine_runner`) for this session: it
        shows in the dashboard and the chat picker like any endpoint found running."""
        self.monitor.add_endpoint(Endpoint(server_root(url), kind, source))
        self._emit("endpoints", None)

    async def unwatch(self, url: str) -> None:
        """Stop watching a session endpoint (an engine that stopped); nothing is saved."""
        await self.monitor.remove_endpoint(server_root(url))
        self._emit("endpoints", None)

    def monitor_endpoint(self, key: str) -> Endpoint | None:
        return self.monitor._endpoints.get(key)

    def targets(self) -> list[ChatTarget]:
        """The chat targets, in picker order (hand-added first)."""
        groups: dict[str, list[RegisteredEndpoint]] = {}
        for member in self.endpoints():
            groups.setdefault(member.target_id, []).append(member)
        out: list[ChatTarget] = []
        for target_id, members in groups.items():
            first = members[0]
            if first.origin == ORIGIN_SETTINGS:
                name = first.setting.group_name if first.setting is not None else first.name
                origin = ORIGIN_SETTINGS
            else:
                name = first.name
                origin = ORIGIN_ENV if any(m.origin == ORIGIN_ENV for m in members) else first.origin
            out.append(ChatTarget(target_id, name, first.kind, origin, tuple(members)))
        return out

    def target(self, target_id: str) -> ChatTarget | None:
        return next((t for t in self.targets() if t.id == target_id), None)

    def models_of(self, target: ChatTarget) -> list[ModelInfo] | None:
        """The models the monitor last saw on the target's first working endpoint; None when the
        monitor has not seen them (the picker then asks the server once)."""
        for member in target.ordered:
            status = member.status
            if status is None or status.state not in (EndpointState.UP, EndpointState.DEGRADED,
                                                      EndpointState.LOADING):
                continue
            if not status.models:
                return None
            return [ModelInfo(id=m.name, provider=target.kind, loaded=m.loaded,
                              context_length=m.context_length or m.max_context_length,
                              size_bytes=m.size_bytes)
                    for m in status.models]
        return None



__all__ = [
    "DOT_BUSY",
    "DOT_DOWN",
    "DOT_UNKNOWN",
    "DOT_UP",
    "ChatTarget",
    "RegisteredEndpoint",
    "ServerRegistry",
    "is_local_url",
]


async def probe_registry_once(
    client: httpx.AsyncClient,
    *,
    settings: Any = None,
    extra_urls: Iterable[str] = (),
    include_defaults: bool = True,
    scan_processes: bool = True,
    secrets: Any = None,
    env: Mapping[str, str] | None = None,
    limit_s: float = 10.0,
) -> list[RegisteredEndpoint]:
    """One probe cycle of the registry, for the headless commands (``doctor``, ``providers``):
    the hand-added endpoints of ``settings`` (a SettingsService; None: the user's settings.yaml)
    with their keys, the seed's variables, the default ports (unless ``include_defaults`` is
    False), running server processes and ``extra_urls``; each probed once, then closed."""
    registry = ServerRegistry(client, settings=settings, env=env, scan_processes=scan_processes,
                              include_defaults=include_defaults, gpu_detector=None, secrets=secrets,
                              interval=3600.0, tick_s=3600.0)
    try:
        await registry.start()
        if extra_urls:
            registry.watch(extra_urls)
        await registry.first_cycle(limit_s)
        return registry.endpoints()
    finally:
        await registry.close()
