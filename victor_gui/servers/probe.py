"""One health probe of one endpoint: fingerprint, kind-specific facts, and a diagnosis a person
can act on, folded into an immutable :class:`EndpointStatus`."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import httpx

from victor_gui.errors import InvalidResponseError, ProviderError
from victor_gui.providers.endpoint_access import InsecureKeyTransportError, check_key_transport
from victor_gui.providers.http import tls_error
from victor_gui.servers.fingerprint import fingerprint
from victor_gui.servers.inspect import Inspection, inspect
from victor_gui.servers.status import (
    DISPLAY_NAMES,
    START_HINTS,
    Endpoint,
    EndpointState,
    EndpointStatus,
    ServerKind,
)

log = logging.getLogger(__name__)

DEFAULT_SLOW_S = 1.0  # an answer to a trivial GET slower than this marks the endpoint degraded
HISTORY_LEN = 60

# Which variable carries the key a server wants, for "API key required" hints.
KEY_HINTS: dict[ServerKind, str] = {
    ServerKind.VLLM: "set VLLM_API_KEY (the value given to `vllm serve --api-key`)",
    ServerKind.LLAMACPP: "set LLAMA_API_KEY (the value given to `llama-server --api-key`)",
    ServerKind.LMSTUDIO: "give Victor GUI the LM Studio API token (Developer → Server Settings)",
}


def host_port(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.hostname}:{port_of(base_url)}"


def port_of(base_url: str) -> int:
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:  # "host:99999" or "host:abc" from a hand-edited setting
        port = None
    return port or (443 if parts.scheme == "https" else 80)


async def probe_endpoint(client: httpx.AsyncClient, endpoint: Endpoint, *,
                         previous: EndpointStatus | None = None, slow_s: float | None = None,
                         history_len: int = HISTORY_LEN) -> EndpointStatus:
    """Probe ``endpoint`` once. ``previous`` carries history (latencies, the kind seen before);
    an answer slower than ``slow_s`` (default :data:`DEFAULT_SLOW_S`) marks it degraded."""
    slow_s = DEFAULT_SLOW_S if slow_s is None else slow_s
    key = endpoint.key
    if endpoint.access is not None:
        try:  # the probe sends the key too: the same consent rule as the chat
            check_key_transport(endpoint.access)
        except InsecureKeyTransportError as exc:
            return failed_status(endpoint, "insecure_key", exc, previous, state=EndpointState.UNAUTHORIZED)
    headers = {"Authorization": f"Bearer {key}"} if key else None
    fp = await fingerprint(client, endpoint.base_url, headers=headers)
    root = fp.reply("/")
    tls = tls_error(root.error, None) if root is not None and root.error is not None else None
    if tls is not None:  # httpx reports a failed certificate check as a connect error
        return failed_status(endpoint, f"tls_{tls.reason}", tls, previous)
    try:
        found = await inspect(client, endpoint.base_url, fp, headers=headers)
    except InvalidResponseError as exc:  # it answers, but not in its API's shape: not "up"
        found = Inspection(state=EndpointState.ERROR, reason="invalid_response",
                           details={"problem": exc.message})
    state = found.state or fp.state
    reason = found.reason or fp.reason
    http_status = found.http_status or fp.http_status
    kind = fp.kind
    seen_kind = previous.kind if previous is not None and previous.is_inference_server else None
    if kind is ServerKind.UNKNOWN and state is EndpointState.DOWN and seen_kind is not None:
        kind = seen_kind  # the last known occupant: "vLLM stopped answering" beats "nothing"
        if reason == "refused":
            reason = "refused_after_seen"
    if state is EndpointState.UP and fp.latency_s is not None and fp.latency_s > slow_s:
        state, reason = EndpointState.DEGRADED, "slow"
    history = previous.latency_history if previous is not None else ()
    if fp.latency_s is not None:
        history = (*history, fp.latency_s)[-history_len:]
    failures = 0
    if state in (EndpointState.DOWN, EndpointState.NOT_INFERENCE, EndpointState.ERROR):
        failures = (previous.consecutive_failures if previous is not None else 0) + 1
    status = EndpointStatus(
        base_url=endpoint.base_url, kind=kind, state=state, reason=reason, source=endpoint.source,
        expected=endpoint.kind_hint,
        version=fp.version, http_status=http_status, latency_s=fp.latency_s, latency_history=history,
        models=tuple(found.models), kv_cache_usage=found.kv_cache_usage,
        details=tuple(sorted(found.details.items())), checked_at=time.time(),
        consecutive_failures=failures)
    return status.with_updates(diagnosis=diagnose(status, endpoint))


async def probe_isolated(client: httpx.AsyncClient, endpoint: Endpoint, *,
                         previous: EndpointStatus | None = None, slow_s: float | None = None,
                         history_len: int = HISTORY_LEN) -> EndpointStatus:
    """:func:`probe_endpoint`, except that an unexpected exception (a bug, or a reply nobody
    foresaw) becomes this endpoint's ``error`` state, logged once: one bad server never stops
    the probes of the others (a sweep gathers them all)."""
    try:
        return await probe_endpoint(client, endpoint, previous=previous, slow_s=slow_s,
                                    history_len=history_len)
    except Exception as exc:
        return error_status(endpoint, exc, previous)


_logged: set[tuple[str, str]] = set()  # (endpoint, error type) already logged with its traceback
_MAX_LOGGED = 1024


def error_status(endpoint: Endpoint, exc: Exception, previous: EndpointStatus | None) -> EndpointStatus:
    """The ``error`` state of an endpoint whose probe raised ``exc``; the traceback is logged
    once per endpoint and error type (a probe repeats every few seconds)."""
    key = (endpoint.base_url, type(exc).__name__)
    if key not in _logged:
        if len(_logged) < _MAX_LOGGED:
            _logged.add(key)
        log.error("probe of %s failed", endpoint.base_url, exc_info=exc)
    failures = (previous.consecutive_failures if previous is not None else 0) + 1
    return EndpointStatus(
        base_url=endpoint.base_url, kind=previous.kind if previous is not None else ServerKind.UNKNOWN,
        state=EndpointState.ERROR, reason="probe_error", source=endpoint.source, expected=endpoint.kind_hint,
        diagnosis=f"probing {host_port(endpoint.base_url)} failed ({type(exc).__name__}); "
                  "the others are unaffected — see the log",
        checked_at=time.time(), consecutive_failures=failures,
        latency_history=previous.latency_history if previous is not None else ())


def failed_status(endpoint: Endpoint, reason: str, error: ProviderError, previous: EndpointStatus | None,
                  *, state: EndpointState = EndpointState.DOWN) -> EndpointStatus:
    """The status of a probe that could not (or would not) reach the server: a TLS failure, a
    key that may not go in clear text, an unusable CA bundle; ``error``'s sentence is the
    diagnosis (it names the host and what to change)."""
    failures = (previous.consecutive_failures if previous is not None else 0) + 1
    kind = previous.kind if previous is not None else ServerKind.UNKNOWN
    return EndpointStatus(
        base_url=endpoint.base_url, kind=kind, state=state, reason=reason, source=endpoint.source,
        expected=endpoint.kind_hint, diagnosis=error.message, checked_at=time.time(),
        latency_history=previous.latency_history if previous is not None else (),
        consecutive_failures=failures)


def diagnose(status: EndpointStatus, endpoint: Endpoint) -> str:
    """One line saying what is wrong and what to do (or what is loaded when all is well)."""
    where = host_port(status.base_url)
    kind = status.kind
    if kind is ServerKind.UNKNOWN and endpoint.kind_hint is not None:
        kind = endpoint.kind_hint
    name = DISPLAY_NAMES[kind]
    reason = status.reason
    if reason == "refused_after_seen" and kind is ServerKind.VLLM:
        return (f"vLLM on {where} refuses connections: it is down, or restarting and loading its model "
                "(vLLM accepts connections only once the model is ready)")
    if reason == "refused_after_seen":
        hint = START_HINTS.get(kind, "restart it")
        return f"{name} on {where} stopped answering (connection refused) — {hint}"
    if reason == "refused":
        start = START_HINTS.get(kind)
        line = f"nothing listens on {where}" + (f" — {start}" if start else "")
        if kind is ServerKind.VLLM:  # a starting vLLM refuses connections until its model is loaded
            line += " (if it is starting, it refuses connections until its model is loaded)"
        return line
    if reason == "unreachable":
        return f"no answer from {where} in time: the host is down or a firewall drops the connection"
    if reason == "bad_url":
        return f"{status.base_url!r} is not a usable server URL (expected http://host:port)"
    if reason == "network":
        return f"cannot reach {where}: network error"
    if reason == "no_answer":
        return f"slow: {where} accepted the connection but sent nothing back in time"
    if reason == "invalid_response":
        return (f"{name} on {where} answers, but not in its API's shape: {status.detail('problem')} "
                "— not usable until it is fixed or restarted")
    if status.state is EndpointState.NOT_INFERENCE:
        what = {"html": "it serves a web page", "not_http": "it does not speak HTTP"}.get(reason, "")
        return f"port {port_of(status.base_url)} is held by another program (not an inference server" + (
            f": {what})" if what else ")")
    if status.state is EndpointState.LOADING:
        return f"model is loading — {name} answers HTTP 503 \"Loading model\" until it is ready"
    if status.state is EndpointState.UNAUTHORIZED:
        code = status.http_status or 401
        if endpoint.key:
            return f"API key rejected (HTTP {code}) by {name} on {where}"
        hint = KEY_HINTS.get(kind, "configure an API key for this endpoint")
        return f"API key required (HTTP {code}) by {name} on {where} — {hint}"
    if reason == "slow":
        return f"slow: {status.latency_s or 0:.1f} s to answer"
    if reason == "engine_dead":
        return (f"{name} on {where} answers but its engine has died "
                f"(HTTP {status.http_status} on /health) — restart it")
    if reason == "server_error":
        return f"{name} on {where} is failing (HTTP {status.http_status})"
    loaded = status.loaded_models
    if not loaded:
        return f"{name} {status.version or ''} is up, no model loaded".replace("  ", " ")
    names = ", ".join(_describe(m.name, m.context_length) for m in loaded[:3])
    more = f" and {len(loaded) - 3} more" if len(loaded) > 3 else ""
    return f"{name} {status.version or ''} is up; loaded: {names}{more}".replace("  ", " ")


def _describe(name: str, ctx: int | None) -> str:
    return f"{name} (ctx {ctx})" if ctx else name
