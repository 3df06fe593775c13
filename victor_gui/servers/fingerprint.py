"""Which server answers on an endpoint, told by reply *bodies* and headers, never by status alone
(servers.md §0).

Traps this module is built around:

* LM Studio answers HTTP 200 to routes it does not have, with
  ``{"error":"Unexpected endpoint or method. (GET /x)"}``: every 200 is checked for a top-level
  ``error`` before it counts as evidence.
* Many llama-server builds serve Ollama-shaped ``/api/tags`` and ``/api/show``: those routes are
  never used as evidence. Ollama is known by ``GET /`` = ``Ollama is running`` or a clean
  ``/api/version``; llama.cpp by its ``Server: llama.cpp`` header or its ``/props`` body.
* llama.cpp answers 503 ``Loading model`` on every route while it loads: that is llama.cpp,
  loading, not a broken server.
* Anything else that speaks HTTP (a web page, nginx, some JSON API) is "not an inference server".
  A lone ``/version`` or ``/api/version`` proves little (many programs have one): it counts
  only beside the server's other tell-tale (FastAPI's ``{"detail":"Not Found"}`` on ``GET /``
  for vLLM, gin's plain ``404 page not found`` for Ollama).

One ``GET /`` tells whether anything listens; the remaining probes then run concurrently, each
bounded by the client's (short) timeout.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import httpx

from victor_gui.errors import InvalidResponseError
from victor_gui.providers.json_guard import loads
from victor_gui.servers.status import EndpointState, ServerKind

MAX_BODY = 256 * 1024  # a probe never reads more than this (another program may stream forever)
PROBE_PATHS = ("/api/version", "/version", "/props", "/api/v0/models", "/v1/models")
LMSTUDIO_UNKNOWN_ROUTE = "Unexpected endpoint or method"


@dataclass(frozen=True)
class Reply:
    """One probe's outcome: an HTTP reply, or the transport error that prevented one."""

    path: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    text: str = ""
    elapsed: float = 0.0
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @cached_property
    def data(self) -> Any:
        """The body as JSON, or None when it is not JSON (or nested too deeply to read)."""
        try:
            return loads(self.text, where=self.path) if self.text else None
        except InvalidResponseError:
            return None

    def json(self, where: str) -> Any:
        """The body as JSON; :class:`InvalidResponseError` naming ``where`` when it is not."""
        return loads(self.text, where=where, status=self.status)

    @property
    def server_header(self) -> str:
        return self.headers.get("server", "")

    @property
    def is_llamacpp(self) -> bool:
        return self.server_header.lower().startswith("llama.cpp")

    @property
    def error_string(self) -> str | None:
        """A top-level string ``error`` (LM Studio and Ollama's error shape)."""
        data = self.data
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return str(data["error"])
        return None

    @property
    def is_lmstudio_unknown_route(self) -> bool:
        return (self.error_string or "").startswith(LMSTUDIO_UNKNOWN_ROUTE)

    def clean_json(self) -> dict[str, Any] | None:
        """A 2xx JSON object that is not an error body, else None."""
        data = self.data
        if self.ok and isinstance(data, dict) and "error" not in data:
            return data
        return None


# Requests one client has in flight for probes at most: below its pool's 64 connections, so a
# probe never queues for a connection. A sweep of 500 endpoints used to queue ~2,000 requests on
# the pool; the wait was counted as the server's latency (and past the 3 s pool timeout as "no
# answer"), so most fast servers were reported slow or down.
PROBE_CONCURRENCY = 48
_gates: weakref.WeakKeyDictionary[httpx.AsyncClient, tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary())


def _gate(client: httpx.AsyncClient) -> asyncio.Semaphore:
    """The client's probe slots (one set per event loop: a semaphore belongs to one loop)."""
    loop = asyncio.get_running_loop()
    found = _gates.get(client)
    if found is None or found[0] is not loop:
        found = _gates[client] = (loop, asyncio.Semaphore(PROBE_CONCURRENCY))
    return found[1]


class _WireClock:
    """When the request reached the wire: httpcore's first trace event (opening a connection,
    or sending the headers on a kept-alive one) comes after the pool handed it a connection."""

    def __init__(self) -> None:
        self.started: float | None = None

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if self.started is None:
            self.started = time.perf_counter()


async def fetch(client: httpx.AsyncClient, base_url: str, path: str, *, method: str = "GET",
                headers: dict[str, str] | None = None, json_body: Any = None) -> Reply:
    """One bounded request; transport failures come back inside the :class:`Reply`. Its
    ``elapsed`` runs from the request's start on the wire, never from a wait for a free slot or
    connection on our side."""
    async with _gate(client):
        clock = _WireClock()
        start = time.perf_counter()
        try:
            async with client.stream(method, base_url.rstrip("/") + path, headers=headers, json=json_body,
                                     extensions={"trace": clock.trace}) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_BODY:
                        break
                text = b"".join(chunks)[:MAX_BODY].decode("utf-8", "replace")
                return Reply(path, response.status_code, {k.lower(): v for k, v in response.headers.items()},
                             text, time.perf_counter() - (clock.started or start))
        except Exception as exc:  # a probe's failure is its result; it must never sink a sweep
            return Reply(path, error=exc, elapsed=time.perf_counter() - (clock.started or start))


@dataclass(frozen=True)
class Fingerprint:
    """What the probes say: the kind, its state, the reason code, and the raw replies."""

    kind: ServerKind
    state: EndpointState
    reason: str
    version: str | None = None
    http_status: int | None = None
    latency_s: float | None = None
    replies: dict[str, Reply] = field(default_factory=dict)

    def reply(self, path: str) -> Reply | None:
        return self.replies.get(path)


async def fingerprint(client: httpx.AsyncClient, base_url: str, *,
                      headers: dict[str, str] | None = None) -> Fingerprint:
    """Probe ``base_url`` (a server root, no ``/v1``) and tell what runs there."""
    problem = url_problem(base_url)
    if problem is not None:
        return _transport_failure(Reply("/", error=ValueError(problem)))
    root = await fetch(client, base_url, "/", headers=headers)
    if root.error is not None:
        return _transport_failure(root)
    paths = follow_up_paths(root)
    others = await asyncio.gather(*(fetch(client, base_url, p, headers=headers) for p in paths))
    replies = {"/": root, **{r.path: r for r in others}}
    return classify(replies)


def url_problem(base_url: str) -> str | None:
    """Why ``base_url`` cannot be probed (None when it can): scheme, host and port checked."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return f"unsupported scheme {parts.scheme!r}"
    if not parts.hostname or " " in parts.netloc:
        return "no host"
    if port is not None and not 0 < port < 65536:
        return f"port {port} out of range"
    return None


def follow_up_paths(root: Reply) -> tuple[str, ...]:
    """The probes still needed after ``GET /``. A root reply that already names the server
    narrows them to the ones that give its version, state and models; anything else gets all
    of them. Fewer requests per sweep keep the loop's bursts short."""
    if root.ok and root.text.strip() == "Ollama is running":
        return ("/api/version",)
    if root.is_llamacpp:
        return ("/props", "/v1/models")
    if root.is_lmstudio_unknown_route:
        return ("/api/v0/models", "/v1/models")
    return PROBE_PATHS


def _transport_failure(root: Reply) -> Fingerprint:
    exc = root.error
    if isinstance(exc, httpx.ConnectTimeout):
        reason, state = "unreachable", EndpointState.DOWN
    elif isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        reason, state = "refused", EndpointState.DOWN
    elif isinstance(exc, httpx.TimeoutException):
        # Something accepted the connection and then said nothing in time.
        reason, state = "no_answer", EndpointState.DEGRADED
    elif isinstance(exc, httpx.RemoteProtocolError):
        reason, state = "not_http", EndpointState.NOT_INFERENCE
    elif isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol | ValueError):
        reason, state = "bad_url", EndpointState.DOWN
    else:
        reason, state = "network", EndpointState.DOWN
    kind = ServerKind.OTHER if state is EndpointState.NOT_INFERENCE else ServerKind.UNKNOWN
    return Fingerprint(kind, state, reason, latency_s=None, replies={"/": root})


def classify(replies: dict[str, Reply]) -> Fingerprint:
    """Decide kind and state from the probe replies (pure; see the module docstring)."""
    root = replies["/"]
    answered = [r for r in replies.values() if r.status is not None]
    latency = root.elapsed

    def result(kind: ServerKind, state: EndpointState, reason: str, version: str | None = None,
               status: int | None = None) -> Fingerprint:
        return Fingerprint(kind, state, reason, version, status if status is not None else root.status,
                           latency, replies)

    auth_codes = [r.status for r in answered if r.status in (401, 403)]

    # llama.cpp: its header is on every reply, loading ones included.
    props = replies.get("/props")
    props_json = props.clean_json() if props else None
    if any(r.is_llamacpp for r in answered) or (props_json and "default_generation_settings" in props_json):
        build = str(props_json.get("build_info")) if props_json and props_json.get("build_info") else None
        if any(r.status == 503 and "loading model" in r.text.lower() for r in answered):
            return result(ServerKind.LLAMACPP, EndpointState.LOADING, "loading", build, 503)
        if props and props.status in (401, 403):
            return result(ServerKind.LLAMACPP, EndpointState.UNAUTHORIZED, f"http_{props.status}", build,
                          props.status)
        return result(ServerKind.LLAMACPP, EndpointState.UP, "ok", build)

    # LM Studio: the 200-with-error body for unknown routes, or /api/v0/models with `state`.
    v0 = replies.get("/api/v0/models")
    v0_json = v0.clean_json() if v0 else None
    is_lmstudio = any(r.is_lmstudio_unknown_route for r in answered) or _has_state_entries(v0_json)
    if not is_lmstudio and any(_lmstudio_auth_body(r) for r in answered):
        is_lmstudio = True
    if is_lmstudio:
        denied = [r for r in (v0, replies.get("/v1/models")) if r is not None and r.status in (401, 403)]
        if denied:
            return result(ServerKind.LMSTUDIO, EndpointState.UNAUTHORIZED, f"http_{denied[0].status}",
                          status=denied[0].status)
        return result(ServerKind.LMSTUDIO, EndpointState.UP, "ok")

    # Ollama: the root text; a clean /api/version counts only beside gin's plain-text 404 on
    # /version (plenty of other programs serve some /api/version).
    api_version = replies.get("/api/version")
    api_version_json = api_version.clean_json() if api_version else None
    ver = replies.get("/version")
    gin_404 = ver is not None and ver.status == 404 and ver.text.strip() == "404 page not found"
    if (root.ok and root.text.strip() == "Ollama is running") or (
            gin_404 and api_version_json and isinstance(api_version_json.get("version"), str)):
        found = api_version_json.get("version") if api_version_json else None
        version = found if isinstance(found, str) else None  # its shape is the inspector's to check
        return result(ServerKind.OLLAMA, EndpointState.UP, "ok", version)

    # vLLM: model cards owned by vllm, or a clean /version beside FastAPI's 404 on GET /.
    ver_json = ver.clean_json() if ver else None
    models = replies.get("/v1/models")
    cards = model_cards(models)
    root_data = root.data if root.status == 404 else None
    fastapi_404 = isinstance(root_data, dict) and root_data.get("detail") == "Not Found"
    has_version = bool(ver_json and isinstance(ver_json.get("version"), str))
    if any(c.get("owned_by") == "vllm" for c in cards) or (has_version and fastapi_404):
        version = str(ver_json["version"]) if ver_json and has_version else None
        if models is not None and models.status in (401, 403):
            return result(ServerKind.VLLM, EndpointState.UNAUTHORIZED, f"http_{models.status}", version,
                          models.status)
        return result(ServerKind.VLLM, EndpointState.UP, "ok", version)

    if cards:
        return result(ServerKind.OPENAI, EndpointState.UP, "ok")
    if auth_codes and len(auth_codes) * 2 >= len(answered):
        # Most probes were refused for lack of credentials: we cannot tell what it is.
        return result(ServerKind.UNKNOWN, EndpointState.UNAUTHORIZED, f"http_{auth_codes[0]}",
                      status=auth_codes[0])
    reason = "html" if "html" in root.headers.get("content-type", "") or root.text.lstrip()[:15].lower(
        ).startswith(("<!doctype", "<html")) else "foreign"
    return result(ServerKind.OTHER, EndpointState.NOT_INFERENCE, reason)


def _has_state_entries(data: dict[str, Any] | None) -> bool:
    entries = data.get("data") if data else None
    return isinstance(entries, list) and bool(entries) and all(
        isinstance(e, dict) and "state" in e for e in entries)


def _lmstudio_auth_body(reply: Reply) -> bool:
    if reply.status not in (401, 403):
        return False
    data = reply.data
    err = data.get("error") if isinstance(data, dict) else None
    return isinstance(err, dict) and "LM Studio" in str(err.get("message", ""))


def model_cards(reply: Reply | None) -> list[dict[str, Any]]:
    """OpenAI ``/v1/models`` entries, when the reply really is such a list."""
    data = reply.clean_json() if reply else None
    entries = data.get("data") if data else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]
