"""The endpoint health dashboard's state (Qt-free): watched endpoints, their live statuses, the
machine's GPUs and RAM, and the user's own endpoints persisted in ``settings.yaml``.

:class:`EndpointsService` owns a :class:`~victor_gui.servers.health.HealthMonitor`; views call
its methods and re-render on its events (``subscribe(callback) -> unsubscribe``, callbacks get
``(event, payload)``):

* ``"status"`` — an :class:`EndpointStatus` changed (state, version, models, ...);
* ``"tick"`` — fresh latency figures for every endpoint (the monitor reports only changes that
  matter, so latency sparklines are refreshed on this slower heartbeat instead);
* ``"endpoints"`` — the set of watched endpoints changed (added, edited, removed);
* ``"hardware"`` — a new :class:`GpuReport` (or the detection error text);
* ``"error"`` — something the user asked for failed (payload: a sentence).

Discovery runs once, in the background, after :meth:`EndpointsService.start`; GPU detection
runs its subprocesses and psutil calls off the loop (``sizing.gpu`` does that itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from victor_gui.config.settings import Endpoint as EndpointSetting
from victor_gui.core.listeners import Listeners
from victor_gui.core.tasks import TaskSet
from victor_gui.servers.discovery import discover, server_root
from victor_gui.servers.health import HealthMonitor
from victor_gui.servers.status import Endpoint, EndpointStatus, ServerKind
from victor_gui.services.endpoint_providers import SecretLookup, endpoint_access
from victor_gui.services.settings_service import SettingsChanged, SettingsService
from victor_gui.sizing.gpu import detect_gpus
from victor_gui.sizing.hardware import GpuReport

log = logging.getLogger(__name__)

Listener = Callable[[str, Any], None]

KIND_HINTS: dict[str, ServerKind] = {
    "ollama": ServerKind.OLLAMA,
    "lmstudio": ServerKind.LMSTUDIO,
    "vllm": ServerKind.VLLM,
    "llamacpp": ServerKind.LLAMACPP,
    "openai-compatible": ServerKind.OPENAI,
    "anthropic-compatible": ServerKind.OPENAI,
}
SETTINGS_SOURCE = "settings"


def to_monitor_endpoint(entry: EndpointSetting, secrets: SecretLookup | None = None) -> Endpoint:
    """The monitor's view of a configured endpoint (the kind is only a hint), with its access
    (key and secret headers read through ``secrets``, which may block: call it off the loop),
    so the probe reaches it with the same key, headers and TLS trust as the chat."""
    return Endpoint(server_root(entry.url), KIND_HINTS.get(entry.kind), SETTINGS_SOURCE,
                    access=endpoint_access(entry, secrets))


class EndpointsService:
    """Watched endpoints, their statuses and the machine's memory, for the dashboard.

    ``client`` is shared and never closed here (short probe timeouts suit it best).
    ``settings`` is the app's one :class:`SettingsService`; endpoints added, edited or removed
    anywhere (here, the Settings dialog, another window) are written through it, and its change
    events keep the watched set in step at once. Without one, a private service over
    ``settings_path`` (None: the user's settings.yaml) is made, for tests and tools.
    ``discover_fn(client, user_endpoints)`` returns statuses of found endpoints; None skips
    discovery (tests watch exactly the endpoints they add). ``gpu_detector`` is awaited for
    the GPU/RAM report (tests may inject a fixed report). ``secrets`` reads an endpoint's key
    and secret headers (the keyring store's ``get_key``; None: probes send none).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        settings: SettingsService | None = None,
        settings_path: Path | None = None,
        interval: float | None = None,
        discover_fn: Callable[[httpx.AsyncClient, list[Endpoint]], Awaitable[list[EndpointStatus]]]
        | None = discover,
        gpu_detector: Callable[[], Awaitable[GpuReport]] | None = detect_gpus,
        tick_s: float | None = None,
        secrets: SecretLookup | None = None,
    ) -> None:
        self._client = client
        self.settings_service = settings or SettingsService(settings_path)
        self._unsubscribe_settings = self.settings_service.subscribe(self._settings_changed)
        self._interval = interval
        self._discover_fn = discover_fn
        self._gpu_detector = gpu_detector
        self._tick_s = tick_s
        self._secrets = secrets
        self._watching: asyncio.Task[Any] | None = None  # the latest settings change being applied
        self.monitor = HealthMonitor(client, interval=interval or 10.0)
        self._listeners: Listeners[[str, Any]] = Listeners(log, "endpoint listener failed")
        self._unsubscribe = self.monitor.subscribe(lambda status: self._emit("status", status))
        self._tasks = TaskSet("endpoints service")
        self._ticker: asyncio.Task[None] | None = None
        self.gpu_report: GpuReport | None = None
        self.hardware_error: str | None = None
        self.hardware_busy = False
        self.discovering = False
        self.started = False
        self._synced = False  # the configured endpoints are watched (after the first load)
        self.closed = False

    # -- observers ------------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event, payload)`` on every change; returns the unsubscribe function."""
        return self._listeners.add(listener)

    def _emit(self, event: str, payload: Any = None) -> None:
        self._listeners.notify(event, payload)

    # -- state ----------------------------------------------------------------------------------

    @property
    def statuses(self) -> list[EndpointStatus]:
        """Every watched endpoint's latest status, in the order they were added."""
        return list(self.monitor.statuses.values())

    @property
    def _settings(self) -> Any:
        return self.settings_service.settings

    @property
    def configured(self) -> list[EndpointSetting]:
        """The endpoints the user added (settings.yaml ``endpoints``)."""
        return list(self._settings.endpoints)

    def setting_for(self, url: str) -> EndpointSetting | None:
        """The configured entry of ``url``, or None for a discovered endpoint."""
        key = server_root(url)
        return next((e for e in self._settings.endpoints if server_root(e.url) == key), None)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load settings, watch the configured endpoints, start probing, then discover and
        detect hardware in the background. Call once, after the first paint."""
        if self.started:
            return
        self.started = True
        await self.settings_service.load()
        if self.closed:  # closed while settings were being read
            return
        notice = self.settings_service.load_notice()  # a bad file, or parts of it left out
        if notice is not None:
            self._emit("error", notice)
        if self._interval is None:
            self.monitor.interval = self._settings.health_probe_interval_s
        for entry in self._settings.endpoints:
            if entry.enabled:
                self.monitor.add_endpoint(await self._monitor_endpoint(entry))
        self._synced = True
        self.monitor.start()
        self._emit("endpoints", None)
        if self._discover_fn is not None:
            self.spawn(self._discover())
        self.spawn(self.refresh_hardware())
        self._ticker = asyncio.create_task(self._tick(), name="endpoint-ticker")

    async def close(self) -> None:
        """Stop probing and every background job (the client stays open: it is shared)."""
        self.closed = True
        self._unsubscribe()
        self._unsubscribe_settings()
        if self._ticker is not None:
            self._ticker.cancel()
        tasks = [t for t in (*self._tasks, self._ticker) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.monitor.stop()
        self._listeners.clear()

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the service keeps (and cancels on close); for views' buttons."""
        return self._tasks.spawn(coro)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s or self.monitor.interval)
            self._emit("tick", None)

    async def _discover(self) -> None:
        self.discovering = True
        try:
            user = [to_monitor_endpoint(e) for e in self._settings.endpoints if e.enabled]
            assert self._discover_fn is not None
            found = await self._discover_fn(self._client, user)
        except Exception as exc:
            log.exception("discovery failed")
            self._emit("error", f"Looking for local servers failed: {type(exc).__name__}")
            return
        finally:
            self.discovering = False
        known = set(self.monitor.statuses)
        for status in found:
            if status.base_url not in known:
                self.monitor.add_endpoint(Endpoint(status.base_url, status.kind if status.is_inference_server
                                                   else status.expected, status.source))
        self._emit("endpoints", None)

    # -- actions --------------------------------------------------------------------------------

    async def refresh_now(self) -> None:
        """Probe every endpoint now and detect the GPUs again."""
        await asyncio.gather(self.monitor.refresh_now(), self.refresh_hardware())
        self._emit("tick", None)

    async def refresh_hardware(self) -> None:
        """Detect GPUs and RAM (subprocesses and psutil run off the loop)."""
        if self._gpu_detector is None or self.hardware_busy:
            return
        self.hardware_busy = True
        try:
            self.gpu_report = await self._gpu_detector()
            self.hardware_error = None
        except Exception as exc:  # detection fails soft; say so instead of showing nothing
            log.exception("GPU detection failed")
            self.hardware_error = f"GPU detection failed: {type(exc).__name__}"
        finally:
            self.hardware_busy = False
        self._emit("hardware", self.gpu_report)

    def set_gpu_report(self, report: GpuReport) -> None:
        """Use ``report`` instead of detecting (tests, "what if" questions)."""
        self.gpu_report, self.hardware_error = report, None
        self._emit("hardware", report)

    async def add_endpoint(self, name: str, kind: str, url: str, **options: Any) -> EndpointSetting:
        """Add a user endpoint (saved through the settings service, watched at once).

        Raises ``ValueError`` (pydantic's ValidationError is one) for a bad name, kind or URL,
        and for a URL or name already configured. ``options`` are the other
        :class:`~victor_gui.config.settings.Endpoint` fields (group, headers, TLS, timeouts).
        """
        entry = EndpointSetting(name=name.strip(), kind=kind, url=url.strip(), **options)

        def add(current: Any) -> dict[str, Any]:
            _check_unique(current.endpoints, entry)
            return {"endpoints": [*current.endpoints, entry]}

        await self.settings_service.update(add)
        await self._settled()
        return entry

    async def edit_endpoint(self, old_url: str, name: str, kind: str, url: str,
                            **options: Any) -> EndpointSetting:
        """Replace the configured endpoint at ``old_url`` (a discovered one becomes configured)."""
        entry = EndpointSetting(name=name.strip(), kind=kind, url=url.strip(), **options)
        old_key = server_root(old_url)

        def edit(current: Any) -> dict[str, Any]:
            rest = [e for e in current.endpoints if server_root(e.url) != old_key]
            _check_unique(rest, entry)
            return {"endpoints": [*rest, entry]}

        before = self.settings_service.settings
        await self.settings_service.update(edit)
        if old_key != server_root(entry.url):
            await self.monitor.remove_endpoint(old_key)
            self._emit("endpoints", None)
        if self.settings_service.settings == before and entry.enabled:
            # Nothing in settings.yaml changed (a new key or secret header lives in the keyring):
            # watch it again so the probes read the keyring anew.
            self._watching = self.spawn(self._watch_entries([entry]))
        await self._settled()
        return entry

    async def remove_endpoint(self, url: str) -> None:
        """Stop watching ``url``; a configured endpoint is also removed from settings.yaml."""
        key = server_root(url)
        if self.setting_for(key) is not None:
            await self.settings_service.update(
                lambda current: {"endpoints": [e for e in current.endpoints if server_root(e.url) != key]})
        await self.monitor.remove_endpoint(key)
        self._emit("endpoints", None)

    def _settings_changed(self, change: SettingsChanged) -> None:
        """Keep the watched set in step with settings.yaml, whoever changed it."""
        # The first load is not a change to follow: start() watches what it read (and the
        # monitor's start probes it once; a refresh here would probe it twice).
        if not self._synced or self.closed or not change.touches("endpoints"):
            return
        before = {server_root(e.url) for e in change.old.endpoints if e.enabled}
        after = {server_root(e.url): e for e in change.new.endpoints if e.enabled}
        for key in before - set(after):
            self.spawn(self.monitor.remove_endpoint(key))
        old = {server_root(e.url): e for e in change.old.endpoints if e.enabled}
        fresh = [entry for key, entry in after.items() if old.get(key) != entry]  # new or edited
        if fresh:
            self._watching = self.spawn(self._watch_entries(fresh))
        self._emit("endpoints", None)

    async def _settled(self) -> None:
        """Wait until the last settings change is watched (its keyring read done), then probe."""
        watching, self._watching = self._watching, None
        if watching is None:
            await self.monitor.refresh_now()
            return
        with contextlib.suppress(asyncio.CancelledError):
            await watching  # it probes what it watched

    async def _monitor_endpoint(self, entry: EndpointSetting) -> Endpoint:
        # The keyring may block: read it off the loop.
        return await asyncio.to_thread(to_monitor_endpoint, entry, self._secrets)

    async def _watch_entries(self, entries: list[EndpointSetting]) -> None:
        """Watch new (or edited: new key, headers, CA) endpoints and probe them at once."""
        known = set(self.monitor.statuses)
        keys = [self.monitor.add_endpoint(await self._monitor_endpoint(entry)) for entry in entries]
        # Probed at once, and only they: a new endpoint by its own first probe (waited for, not
        # repeated), an edited one (new key, headers, CA) again now.
        await asyncio.gather(self.monitor.probed([k for k in keys if k not in known]),
                             self.monitor.refresh_now([k for k in keys if k in known]))

    def watch(self, urls: Iterable[str]) -> None:
        """Watch ``urls`` for this session only (not saved)."""
        for url in urls:
            self.monitor.add_endpoint(Endpoint(server_root(url), None, "session"))
        self._emit("endpoints", None)



def _check_unique(existing: Iterable[EndpointSetting], entry: EndpointSetting) -> None:
    for other in existing:
        if server_root(other.url) == server_root(entry.url):
            raise ValueError(f"{entry.url} is already in the list")
        if other.name == entry.name:
            raise ValueError(f"an endpoint named {entry.name!r} is already in the list")
