"""Where local inference servers may listen, and one concurrent sweep that probes them all.

Candidates, most specific first (duplicates dropped by URL):

1. endpoints the user configured (passed in);
2. the seed's variables: ``OLLAMA_ENDPOINTS``, ``OLLAMA_HOST``, ``VICTOR_LM_STUDIO_HOST``,
   ``LMSTUDIO_ENDPOINTS``, ``VICTOR_VLLM_HOST``, ``VICTOR_LLAMACPP_HOST``
   (parsed by :mod:`victor_gui.providers.endpoints`, the same rules the providers use);
3. the default ports: Ollama 11434, LM Studio 1234, vLLM 8000, llama.cpp 8080;
4. TCP ports on which a known server process listens (``ollama``, ``llama-server``,
   LM Studio / ``lms`` / ``llmster``, ``vllm``), found with psutil, for servers started on
   other ports. Listing sockets may need privileges: it fails soft, in a worker thread.

Every probe runs concurrently through the one injected client, each bounded by its timeouts,
so a sweep over dead ports costs one connect timeout at most, not one per port.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, TypeVar

import httpx

from victor_gui.providers.catalog import find_spec, local_specs
from victor_gui.providers.endpoints import env_base_urls
from victor_gui.providers.keys import resolve_api_key
from victor_gui.servers.probe import probe_isolated
from victor_gui.servers.status import Endpoint, EndpointState, EndpointStatus, ServerKind

log = logging.getLogger(__name__)
T = TypeVar("T")

def server_root(url: str) -> str:
    """A server's root URL: no trailing slash and no OpenAI ``/v1`` suffix."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


# Default ports, read from the catalog's local rows (the one place they are written).
DEFAULT_ENDPOINTS: tuple[tuple[ServerKind, str], ...] = tuple(
    (ServerKind(spec.name), server_root(spec.default_base_url))
    for spec in local_specs() if spec.default_base_url)

# The provider name in the catalog for each kind (API keys, model listing).
PROVIDER_FOR_KIND: dict[ServerKind, str] = {
    ServerKind.OLLAMA: "ollama",
    ServerKind.LMSTUDIO: "lmstudio",
    ServerKind.VLLM: "vllm",
    ServerKind.LLAMACPP: "llamacpp",
}


def env_endpoints(env: Mapping[str, str] | None = None) -> list[Endpoint]:
    """Endpoints named by the seed's environment variables, in the providers' order (the
    catalog rows' ``host_env_vars``, parsed by :func:`~victor_gui.providers.endpoints.env_base_urls`)."""
    return [Endpoint(server_root(url), ServerKind(spec.name), f"env:{var}")
            for spec in local_specs() for var, url in env_base_urls(spec, env)]


def default_endpoints() -> list[Endpoint]:
    return [Endpoint(url, kind, "default") for kind, url in DEFAULT_ENDPOINTS]


def candidate_endpoints(
    user: Iterable[Endpoint | str] = (),
    *,
    env: Mapping[str, str] | None = None,
    include_defaults: bool = True,
    extra: Iterable[Endpoint] = (),
    with_keys: bool = True,
) -> list[Endpoint]:
    """User endpoints, then environment, then defaults, then ``extra`` (e.g. from processes);
    one entry per URL (the first source wins). With ``with_keys``, an endpoint of a known kind
    gets that provider's API key (``VLLM_API_KEY``, ``LLAMA_API_KEY``, keyring) unless it has one.
    """
    items: list[Endpoint] = [u if isinstance(u, Endpoint) else Endpoint(server_root(u), None, "user")
                             for u in user]
    items += env_endpoints(env)
    if include_defaults:
        items += default_endpoints()
    items += list(extra)
    out: dict[str, Endpoint] = {}
    for item in items:
        root = server_root(item.base_url)
        if root in out:
            continue
        if with_keys and item.api_key is None and item.kind_hint in PROVIDER_FOR_KIND:
            spec = find_spec(PROVIDER_FOR_KIND[item.kind_hint])
            if spec is not None and spec.key_env_vars:
                item = Endpoint(root, item.kind_hint, item.source, resolve_api_key(spec, env=env)[0])
        out[root] = Endpoint(root, item.kind_hint, item.source, item.api_key)
    return list(out.values())


# ---------------------------------------------------------------------------------------------
# Server processes listening on other ports (psutil)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListeningProcess:
    pid: int
    name: str
    kind: ServerKind
    port: int
    host: str


def match_server_process(name: str, cmdline: Sequence[str]) -> ServerKind | None:
    """The server kind a process is, from its name and command line; None for anything else.

    Ollama's per-model runners (``ollama runner --port N``) are internal llama servers with
    Ollama's private protocol: they are not endpoints and are skipped.
    """
    exe = PurePath(cmdline[0]).name.lower() if cmdline else ""
    lowered = name.lower()
    args = [a.lower() for a in cmdline[1:]]
    if lowered.startswith("ollama") or exe.startswith("ollama"):
        return None if "runner" in args else ServerKind.OLLAMA
    if lowered.startswith("llama-server") or exe.startswith("llama-server"):
        return ServerKind.LLAMACPP
    if lowered in ("lm studio", "lm-studio", "lms", "llmster") or exe in ("lm studio", "lm-studio", "lms",
                                                                           "llmster"):
        return ServerKind.LMSTUDIO
    if lowered == "vllm" or exe == "vllm":
        return ServerKind.VLLM
    if lowered.startswith("python") and any("vllm" in a for a in args):
        return ServerKind.VLLM
    return None


Matcher = Callable[[Any], "ServerKind | None"]


def _default_matcher(proc: Any) -> ServerKind | None:
    info = proc.info
    kind = match_server_process(info.get("name") or "", info.get("cmdline") or [])
    if kind is ServerKind.LLAMACPP and _router_child(proc):
        return None
    return kind


def _router_child(proc: Any) -> bool:
    """Whether ``proc`` is a llama-server a llama-server *router* started for one of its models:
    it listens on a private port and goes away when the router unloads it; the router is the
    endpoint (like Ollama's runners, skipped)."""
    try:
        parent = proc.parent()
        return (parent is not None
                and match_server_process(parent.name(), parent.cmdline()) is ServerKind.LLAMACPP)
    except Exception:  # psutil raises platform-specific errors (gone, access denied)
        return False


def scan_listening_processes(matcher: Matcher | None = None) -> list[ListeningProcess]:
    """Blocking: TCP ports in LISTEN state owned by server processes. Run it in a thread.

    Per-process lookups, so an unprivileged user still sees their own processes where the
    system-wide table (``psutil.net_connections``) would be refused (macOS). Never raises.
    """
    try:
        import psutil
    except ImportError:  # psutil is a dependency, but a broken install must not break discovery
        return []
    matcher = matcher or _default_matcher
    found: list[ListeningProcess] = []
    try:
        processes = list(psutil.process_iter(["pid", "name", "cmdline"]))
    except Exception as exc:  # psutil raises platform-specific errors; a scan is best-effort
        log.debug("process scan failed: %s", exc)
        return []
    for proc in processes:
        try:
            kind = matcher(proc)
            if kind is None:
                continue
            conns = proc.net_connections(kind="tcp") if hasattr(proc, "net_connections") else (
                proc.connections(kind="tcp"))
            for conn in conns:
                if conn.status != psutil.CONN_LISTEN or not conn.laddr:
                    continue
                found.append(ListeningProcess(proc.pid, proc.info.get("name") or "", kind,
                                              conn.laddr.port, conn.laddr.ip))
        except (psutil.Error, OSError) as exc:
            log.debug("cannot inspect process %s: %s", getattr(proc, "pid", "?"), exc)
    return found


def process_endpoints(found: Iterable[ListeningProcess]) -> list[Endpoint]:
    out: list[Endpoint] = []
    for item in found:
        host = item.host
        if host in ("", "0.0.0.0", "::", "::ffff:0.0.0.0"):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        out.append(Endpoint(f"http://{host}:{item.port}", item.kind, f"process:{item.name or item.pid}"))
    return out


async def find_process_endpoints(matcher: Matcher | None = None) -> list[Endpoint]:
    """Endpoints of running server processes (in a worker thread; [] when not permitted)."""
    found = await asyncio.to_thread(scan_listening_processes, matcher)
    return process_endpoints(found)


# ---------------------------------------------------------------------------------------------
# The sweep
# ---------------------------------------------------------------------------------------------

async def gather_staggered(coros: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """``asyncio.gather`` that starts one task per loop iteration: all probes still run
    concurrently, but their start-up work (building requests, opening sockets) is spread over
    iterations instead of landing in one long one that would stall the UI."""
    tasks: list[asyncio.Task[T]] = []
    try:
        for coro in coros:
            tasks.append(asyncio.ensure_future(coro))
            await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        for coro in coros[len(tasks):]:
            coro.close()
        raise


async def discover(
    client: httpx.AsyncClient,
    user: Iterable[Endpoint | str] = (),
    *,
    env: Mapping[str, str] | None = None,
    include_defaults: bool = True,
    scan_processes: bool = True,
    matcher: Matcher | None = None,
) -> list[EndpointStatus]:
    """Probe every candidate concurrently; one status per endpoint, in candidate order.

    Endpoints found only through a process scan are kept only when they turn out to be inference
    servers (a server process may hold helper ports that speak something else). Each probe is
    isolated: one that raises becomes its endpoint's ``error`` state, and the others finish.
    """
    extra = await find_process_endpoints(matcher) if scan_processes else []
    candidates = candidate_endpoints(user, env=env, include_defaults=include_defaults, extra=extra)
    statuses = await gather_staggered([probe_isolated(client, c) for c in candidates])
    return [s for s in statuses
            if not s.source.startswith("process:") or (
                s.is_inference_server and s.state is not EndpointState.DOWN)]
