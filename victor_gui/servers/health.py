"""The live health monitor: periodic probes of a set of endpoints, with change events for the UI.

Qt-free observer API: ``subscribe(callback)`` returns an ``unsubscribe`` function; callbacks get
an immutable :class:`EndpointStatus` whenever something worth showing changed (state, kind,
version, loaded models, KV use — not every latency wobble; see ``EndpointStatus.change_key``).

Scheduling: one asyncio task per endpoint. An endpoint that is up is probed every ``interval``
seconds; one that is down (or held by another program) backs off exponentially, doubling up to
``max_interval``, so a machine with nothing running is not hammered. ``refresh_now()`` probes
every endpoint at once and resets the backoff. All I/O is async through the injected client;
nothing blocks the loop.

An endpoint with an ``access`` (a configured endpoint's key, headers, CA bundle, timeouts) is
probed through its own client, built on its first probe (the CA bundle is read off the loop),
kept while it is watched with the same access, and closed when it is removed, edited or the
monitor stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

import httpx

from victor_gui.core.listeners import Listeners
from victor_gui.errors import CABundleError
from victor_gui.providers.endpoint_access import make_endpoint_client
from victor_gui.providers.http import PROBE_TIMEOUTS
from victor_gui.servers.discovery import gather_staggered, server_root
from victor_gui.servers.probe import HISTORY_LEN, error_status, failed_status, probe_endpoint
from victor_gui.servers.status import Endpoint, EndpointState, EndpointStatus

log = logging.getLogger(__name__)

Callback = Callable[[EndpointStatus], None]
_BACKING_OFF = (EndpointState.DOWN, EndpointState.NOT_INFERENCE, EndpointState.ERROR)


def backoff_delay(interval: float, failures: int, max_interval: float) -> float:
    """Seconds until the next probe after ``failures`` consecutive failed probes."""
    if failures <= 0:
        return interval
    return float(min(max_interval, interval * 2.0 ** (failures - 1)))


class HealthMonitor:
    """Periodic health probes of local server endpoints.

    ``client`` is the app's shared ``httpx.AsyncClient`` (with short probe timeouts, e.g.
    ``make_client(PROBE_TIMEOUTS)``); the monitor never closes it.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        endpoints: Iterable[Endpoint | str] = (),
        *,
        interval: float = 5.0,
        max_interval: float = 60.0,
        slow_s: float | None = None,
        history_len: int = HISTORY_LEN,
    ) -> None:
        self._client = client
        self.interval = interval
        self.max_interval = max_interval
        self.slow_s = slow_s
        self.history_len = history_len
        self._endpoints: dict[str, Endpoint] = {}
        self._statuses: dict[str, EndpointStatus] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._subscribers: Listeners[[EndpointStatus]] = Listeners(log, "health subscriber failed")
        self._running = False
        self._clients: dict[str, httpx.AsyncClient] = {}  # own clients of endpoints with access
        # Clients replaced by an edit, closed by the endpoint's next probe (under its lock, so
        # never while a probe still uses them) or on stop.
        self._stale_clients: dict[str, list[httpx.AsyncClient]] = {}
        self.probe_counts: dict[str, int] = {}
        self._probed: dict[str, asyncio.Event] = {}  # set once an endpoint was probed at least once
        for item in endpoints:
            self.add_endpoint(item)

    # -- observers ------------------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(status)`` on every change; returns the function that unsubscribes."""
        return self._subscribers.add(callback)

    def _emit(self, status: EndpointStatus) -> None:
        self._subscribers.notify(status)

    # -- endpoints ------------------------------------------------------------------------------

    @property
    def statuses(self) -> dict[str, EndpointStatus]:
        """The latest status of every endpoint, by root URL (a copy)."""
        return dict(self._statuses)

    def status(self, url: str) -> EndpointStatus | None:
        return self._statuses.get(server_root(url))

    def add_endpoint(self, endpoint: Endpoint | str) -> str:
        """Watch ``endpoint`` (starts probing at once if the monitor runs); returns its key."""
        if isinstance(endpoint, str):
            endpoint = Endpoint(server_root(endpoint), None, "user")
        key = server_root(endpoint.base_url)
        endpoint = Endpoint(key, endpoint.kind_hint, endpoint.source, endpoint.api_key, endpoint.access)
        old = self._endpoints.get(key)
        if old is not None and old.access != endpoint.access and key in self._clients:
            self._stale_clients.setdefault(key, []).append(self._clients.pop(key))  # edited
        self._endpoints[key] = endpoint
        self._statuses.setdefault(key, EndpointStatus(base_url=key, source=endpoint.source))
        self._locks.setdefault(key, asyncio.Lock())
        self.probe_counts.setdefault(key, 0)
        self._probed.setdefault(key, asyncio.Event())
        if self._running and key not in self._tasks:
            self._spawn(key)
        return key

    async def remove_endpoint(self, url: str) -> None:
        key = server_root(url)
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._endpoints.pop(key, None)
        self._statuses.pop(key, None)
        self._wake.pop(key, None)
        self._locks.pop(key, None)
        self.probe_counts.pop(key, None)
        event = self._probed.pop(key, None)
        if event is not None:
            event.set()  # nobody waits forever for an endpoint that is gone
        for client in [*self._stale_clients.pop(key, []), *filter(None, [self._clients.pop(key, None)])]:
            await client.aclose()

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start probing every endpoint (call from inside the running loop)."""
        if self._running:
            return
        self._running = True
        for key in self._endpoints:
            self._spawn(key)

    async def stop(self) -> None:
        """Stop all probes and wait for them to end."""
        self._running = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        clients = [*self._clients.values(), *(c for cs in self._stale_clients.values() for c in cs)]
        self._clients.clear()
        self._stale_clients.clear()
        for client in clients:
            await client.aclose()

    async def probed(self, keys: Iterable[str]) -> None:
        """Wait until each of ``keys`` has been probed at least once (a newly added endpoint's
        own first probe: waiting for it instead of probing it a second time). Probes those the
        monitor is not running for."""
        waits = [self._probed[k] for k in (server_root(u) for u in keys) if k in self._probed]
        if not self._running:
            await self.refresh_now(keys)
            return
        await asyncio.gather(*(event.wait() for event in waits))

    async def refresh_now(self, only: Iterable[str] | None = None) -> dict[str, EndpointStatus]:
        """Probe every endpoint (or those in ``only``) now, concurrently, reset their backoffs;
        return the statuses."""
        keys = list(self._endpoints) if only is None else [
            k for k in (server_root(u) for u in only) if k in self._endpoints]
        await gather_staggered([self._probe(key, reset=True) for key in keys])
        for key in keys:
            event = self._wake.get(key)
            if event is not None:
                event.set()  # reschedule from now on the regular interval
        return self.statuses

    # -- internals ------------------------------------------------------------------------------

    def _spawn(self, key: str) -> None:
        self._wake[key] = asyncio.Event()
        self._tasks[key] = asyncio.create_task(self._run(key), name=f"health:{key}")

    async def _run(self, key: str) -> None:
        wake = self._wake[key]
        while True:
            status = await self._probe(key)
            delay = self._delay(status)
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), delay)

    def _delay(self, status: EndpointStatus) -> float:
        if status.state in _BACKING_OFF:
            return backoff_delay(self.interval, status.consecutive_failures, self.max_interval)
        return self.interval

    async def _client_for(self, key: str, endpoint: Endpoint) -> httpx.AsyncClient:
        """The shared client, or the endpoint's own when it has an access (built once)."""
        for stale in self._stale_clients.pop(key, []):
            await stale.aclose()
        access = endpoint.access
        if access is None:
            return self._client
        client = self._clients.get(key)
        if client is None:
            # Off the loop: it reads the CA bundle (or the system's trust store).
            client = await asyncio.to_thread(make_endpoint_client, access, timeouts=PROBE_TIMEOUTS)
            if self._endpoints.get(key) is endpoint:
                self._clients[key] = client
            # else: removed or edited while the bundle was read; _probe closes it after this probe
        return client

    async def _probe(self, key: str, *, reset: bool = False) -> EndpointStatus:
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            return EndpointStatus(base_url=key)
        async with self._locks[key]:
            previous = self._statuses.get(key)
            if reset and previous is not None:
                previous = previous.with_updates(consecutive_failures=0)
            try:
                client = await self._client_for(key, endpoint)
                try:
                    status = await probe_endpoint(client, endpoint, previous=previous, slow_s=self.slow_s,
                                                  history_len=self.history_len)
                finally:
                    if client is not self._client and self._clients.get(key) is not client:
                        await client.aclose()  # not (or no longer) the endpoint's cached client
            except CABundleError as exc:
                status = failed_status(endpoint, "ca_bundle", exc, previous)
            except Exception as exc:  # a probe bug must not kill the endpoint's loop (logged once)
                status = error_status(endpoint, exc, previous)
            self.probe_counts[key] = self.probe_counts.get(key, 0) + 1
            if key in self._probed:
                self._probed[key].set()
            status = status.with_updates(next_probe_in=self._delay(status))
            if key not in self._endpoints:  # removed while probing
                return status
            changed = previous is None or previous.change_key() != status.change_key()
            self._statuses[key] = status
        if changed:
            self._emit(status)
        return status
