"""A faithful Ollama simulator (native API, ``shared/reference/servers.md`` §1).

Byte-level behaviour reproduced: ``GET /`` answers ``Ollama is running``; NDJSON streams are one
Go-marshalled JSON object per ``\\n``-terminated line (``application/x-ndjson``), one chunk per
line; durations are nanoseconds and zero metrics are omitted; unknown paths get gin's plain-text
``404 page not found`` and known paths with the wrong method ``405 method not allowed``; a
``Host`` header that is not loopback/private/``localhost`` gets a bare 403 (the DNS-rebinding
check); once output has begun an error is an ``{"error": ...}`` line under status 200.

Context overflow is reproduced as Ollama does it: by default the oldest turns are dropped and
the reply is normal (``prompt_eval_count`` then equals the context); only ``"truncate": false``
turns it into 400 ``the input length exceeds the context length``. A model without the
``tools``/``thinking`` capability is refused with 400 before anything is generated.

Departures, on purpose: no real model runs (the reply is the queued :class:`Script`); token
counts are the script's, not a tokenizer's; a "cold load" blocks only while ``server.loading``
is set or the script's fault is ``loading`` (Ollama has no loading 503, so that fault is a delay).
"""

from __future__ import annotations

import ipaddress
import sys
import time
from typing import Any, ClassVar

from tests.servers.base import Fault, Script, SimHandler, SimServer
from tests.servers.embeddings import OllamaEmbedMixin
from tests.servers.ollama_models import (
    DEFAULT_CONTEXT,
    Loaded,
    SimModel,
    full_name,
    go_json,
    go_time,
    keep_alive_seconds,
)
from tests.servers.ollama_pull import PullMixin
from tests.servers.ollama_reply import ChatReply

VERSION = "0.33.0"
BUSY = "busy"  # Ollama-only fault: 503 when more than OLLAMA_MAX_QUEUE requests wait
BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"  # two spaces
MIDSTREAM_MESSAGE = "an error was encountered while running the model: unexpected EOF"
OVERFLOW_MESSAGE = "the input length exceeds the context length"
RUNNER_CRASH = "llama runner process has terminated: exit status 2"


def _allowed_host(host_header: str | None) -> bool:
    """Ollama's ``allowedHost`` for a server bound to loopback (``server/routes.go``)."""
    if not host_header:
        return True
    host = host_header.strip()
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.split(":")[0]
    host = host.lower()
    if host in ("", "localhost") or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified


class OllamaHandler(OllamaEmbedMixin, PullMixin, SimHandler):
    """Routes of the native API (the subset a chat client and a model manager use)."""

    routes: ClassVar[dict[tuple[str, str], str]] = {
        ("GET", "/"): "root", ("HEAD", "/"): "root",
        ("GET", "/api/version"): "version", ("HEAD", "/api/version"): "version",
        ("GET", "/api/tags"): "tags", ("HEAD", "/api/tags"): "tags",
        ("GET", "/api/ps"): "ps",
        ("POST", "/api/show"): "show",
        ("POST", "/api/chat"): "chat",
        ("POST", "/api/generate"): "generate",
        ("POST", "/api/embed"): "embed",
        ("POST", "/api/pull"): "pull",
        ("DELETE", "/api/delete"): "delete",
    }
    server: OllamaServer  # type: ignore[assignment]

    def _entry(self) -> None:
        if self.server.host_check and not _allowed_host(self.headers.get("Host")):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.server.requests.append(_recorded(self, None))
            self.send_bytes(403, b"", "text/plain")  # bare 403, exactly as Ollama's check answers
            return
        self._dispatch()

    def send_response(self, code: int, message: str | None = None) -> None:
        # Go's net/http sends Date but no Server header; keep the fingerprint honest.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    do_GET = _entry
    do_POST = _entry
    do_DELETE = _entry
    do_HEAD = _entry

    def unknown_route(self, path: str) -> None:
        if any(p == path for (_, p) in self.routes):
            self.send_text(405, "405 method not allowed", content_type="text/plain")
        else:
            self.send_text(404, "404 page not found", content_type="text/plain")

    # -- replies in Go's encoding -------------------------------------------------------------

    def send_go(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, go_json(payload).encode(), "application/json; charset=utf-8", headers)

    def send_error_json(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self.send_go(status, {"error": message}, headers)

    def write_line(self, payload: Any) -> None:
        self.write_chunk(go_json(payload).encode() + b"\n")

    # -- health and listing -------------------------------------------------------------------

    def root(self) -> None:
        self.send_text(200, "Ollama is running", content_type="text/plain; charset=utf-8")

    def version(self) -> None:
        self.send_go(200, {"version": VERSION})

    def tags(self) -> None:
        self.send_go(200, {"models": [m.tags_entry() for m in self.server.store.values()]})

    def ps(self) -> None:
        self.server.expire()
        loaded = sorted(self.server.loaded.values(), key=lambda item: -item.expires)
        self.send_go(200, {"models": [item.ps_entry() for item in loaded]})

    def show(self) -> None:
        body = self.body if isinstance(self.body, dict) else {}
        name = body.get("model") or body.get("name")
        if not name:
            self.send_error_json(400, "model is required")
            return
        model = self.server.find(name)
        if model is None:
            self.send_error_json(404, f"model '{name}' not found")
            return
        self.send_go(200, model.show())

    def delete(self) -> None:
        body = self.body if isinstance(self.body, dict) else {}
        name = body.get("model") or body.get("name") or ""
        if self.server.find(name) is None:
            self.send_error_json(404, f"model '{name}' not found")
            return
        self.server.store.pop(full_name(name), None)
        self.server.loaded.pop(full_name(name), None)
        self.send_bytes(200, b"", "text/plain")

    # -- load / unload --------------------------------------------------------------------------

    def _load_or_unload(self, name: str, model: SimModel, body: dict[str, Any], field: str) -> None:
        keep = keep_alive_seconds(body.get("keep_alive"), self.server.default_keep_alive)
        if keep == 0:
            self.server.loaded.pop(model.name, None)
            reason = "unload"
        else:
            self.server.mark_loaded(model, keep, self._num_ctx(model, body))
            reason = "load"
        reply: dict[str, Any] = {"model": name, "created_at": go_time()}
        if field == "message":
            reply["message"] = {"role": "assistant", "content": ""}
        else:
            reply["response"] = ""
        reply.update({"done_reason": reason, "done": True})
        self.send_go(200, reply)

    def _num_ctx(self, model: SimModel, body: dict[str, Any]) -> int:
        options = body.get("options") or {}
        asked = int(options.get("num_ctx") or model.num_ctx or self.server.default_context)
        # Ollama caps num_ctx at the trained context ("requested context size too large for
        # model", llm/server.go), and /api/ps reports the capped value.
        return min(asked, model.context_length, self.server.max_context or asked)

    def generate(self) -> None:
        body = self.body if isinstance(self.body, dict) else None
        if body is None:
            self.send_error_json(400, "missing request body")
            return
        name = body.get("model") or ""
        model = self.server.find(name)
        if model is None:
            self.send_error_json(404, f'model "{name}" not found, try pulling it first')
            return
        if not body.get("prompt"):
            self._load_or_unload(name, model, body, "response")
            return
        script = self.next_script()
        self.server.mark_loaded(model, keep_alive_seconds(body.get("keep_alive")), self._num_ctx(model, body))
        final = {"model": name, "created_at": go_time(), "response": "", "done": True,
                 "done_reason": "stop", **self._metrics(script, script.prompt_tokens, 0)}
        if body.get("stream") is False:
            self.send_go(200, {**final, "response": script.text})
            return
        self.start_stream("application/x-ndjson")
        for piece in script.text_pieces():
            self.write_line({"model": name, "created_at": go_time(), "response": piece, "done": False})
        self.write_line(final)
        self.end_stream()

    # -- chat -----------------------------------------------------------------------------------

    def chat(self) -> None:
        body = self.body if isinstance(self.body, dict) else None
        if body is None:
            self.send_error_json(400, "missing request body" if self.body is None else "invalid JSON")
            return
        name = body.get("model")
        if not name:
            self.send_error_json(400, "model is required")
            return
        model = self.server.find(name)
        if model is not None and not body.get("messages"):
            self._load_or_unload(name, model, body, "message")
            return
        # Ollama's own validation comes first and consumes no script: a refused request is
        # answered without generating anything.
        if model is not None and body.get("tools") and "tools" not in model.capabilities:
            self.send_error_json(400, f"registry.ollama.ai/library/{model.name} does not support tools")
            return
        think = body.get("think")
        if model is not None and think not in (None, False) and "thinking" not in model.capabilities:
            self.send_error_json(400, f'"{name}" does not support thinking')
            return
        script = self.next_script()
        if self._early_fault(script, name):
            return
        if model is None:
            self.send_error_json(404, f'model "{name}" not found, try pulling it first')
            return
        num_ctx = self._num_ctx(model, body)
        prompt_tokens = self._prompt_tokens(body, script)
        if prompt_tokens > num_ctx or script.fault == Fault.CONTEXT_OVERFLOW:
            if body.get("truncate") is False:
                self.send_error_json(400, OVERFLOW_MESSAGE)
                return
            # Ollama's default: drop the oldest turns until the prompt fits, and say nothing.
            prompt_tokens = num_ctx
        load_start = time.monotonic()
        if script.fault == Fault.LOADING or self.server.loading:
            self._wait_for_load(script)
        load_ns = int((time.monotonic() - load_start) * 1e9) + 1_000_000
        self.server.mark_loaded(model, keep_alive_seconds(body.get("keep_alive"),
                                                          self.server.default_keep_alive), num_ctx)
        reply = ChatReply(name, script, body, load_ns, prompt_tokens, self._metrics)
        if body.get("stream") is False:
            self._chat_whole(script, reply)
        else:
            self._chat_stream(script, reply)

    def _early_fault(self, script: Script, name: str) -> bool:
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:  # Ollama behind an auth proxy, or ollama.com without a key
            self.send_error_json(401, "unauthorized")
        elif fault == Fault.UNKNOWN_MODEL:
            self.send_error_json(404, f'model "{name}" not found, try pulling it first')
        elif fault == Fault.RATE_LIMIT:
            self.send_error_json(429, "too many requests", {"Retry-After": script.retry_after})
        elif fault == Fault.SERVER_ERROR:
            self.send_error_json(500, RUNNER_CRASH)
        elif fault == BUSY:
            self.send_error_json(503, BUSY_MESSAGE)
        elif fault == Fault.HTML:
            self.html_error_page(502)
        else:
            return False
        return True

    def _wait_for_load(self, script: Script) -> None:
        deadline = time.monotonic() + float(self.server.options.get("load_seconds", 0.3))
        while (self.server.loading or time.monotonic() < deadline) and not self.server.stop_event.is_set():
            time.sleep(0.01)
            if not self.server.loading and script.fault != Fault.LOADING:
                break

    def _prompt_tokens(self, body: dict[str, Any], script: Script) -> int:
        # Rough tokenizer: 4 characters a token plus a few per message for the template.
        estimate = sum(len(str(m.get("content") or "")) // 4 + 4 for m in body.get("messages") or [])
        return max(script.prompt_tokens, estimate)

    def _metrics(self, script: Script, prompt_tokens: int, load_ns: int, eval_count: int | None = None,
                 ) -> dict[str, int]:
        count = script.completion_count() if eval_count is None else eval_count
        opts = self.server.options
        prompt_ns = prompt_tokens * int(opts.get("prompt_ns_per_token", 2_500_000))
        eval_ns = count * int(opts.get("eval_ns_per_token", 25_000_000))
        metrics = {"total_duration": load_ns + prompt_ns + eval_ns + 1_000_000, "load_duration": load_ns,
                   "prompt_eval_count": prompt_tokens, "prompt_eval_duration": prompt_ns,
                   "eval_count": count, "eval_duration": eval_ns}
        return {k: v for k, v in metrics.items() if v}  # Go's omitempty

    def _chat_whole(self, script: Script, reply: ChatReply) -> None:
        if script.fault in (Fault.STALL,):
            self.stall()
            return
        if script.fault == Fault.MIDSTREAM_ERROR:  # nothing written yet, so the status carries it
            self.send_error_json(500, MIDSTREAM_MESSAGE)
            return
        data = go_json(reply.whole()).encode()
        if script.fault == Fault.MALFORMED:
            data = data[: len(data) // 2]
            self.send_bytes(200, data, "application/json; charset=utf-8")
            return
        if script.fault == Fault.TRUNCATED:
            self.send_truncated(200, data, "application/json; charset=utf-8")
            return
        self.send_bytes(200, data, "application/json; charset=utf-8")

    def _chat_stream(self, script: Script, reply: ChatReply) -> None:
        self.start_stream("application/x-ndjson")
        lines = reply.stream_lines()
        fault = script.fault
        for index, line in enumerate(lines[:-1]):
            if index == script.fail_after and fault in _MID_FAULTS:
                self._mid_fault(fault, reply.name)
                return
            data = go_json(line).encode() + b"\n"
            if fault == Fault.UTF8_SPLIT:
                self._write_split(data)
            else:
                self.write_chunk(data)
            self.pause(script)
        if fault in _MID_FAULTS:  # fewer lines than fail_after: fail before the final line
            self._mid_fault(fault, reply.name)
            return
        self.write_chunk(go_json(lines[-1]).encode() + b"\n")
        self.end_stream()

    def _mid_fault(self, fault: str, name: str) -> None:
        if fault == Fault.MIDSTREAM_ERROR:
            self.write_line({"error": MIDSTREAM_MESSAGE})
            self.end_stream()
        elif fault == Fault.MALFORMED:
            self.write_chunk(f'{{"model":"{name}","created_at":"{go_time()}","message":{{"role":"assis\n')
            self.end_stream()
        elif fault == Fault.TRUNCATED:
            self.drop_connection()
        elif fault == Fault.STALL:
            self.stall()

    def _write_split(self, data: bytes) -> None:
        """Write ``data`` as two chunks cut inside its first multi-byte character, if any."""
        cut = next((i + 1 for i, b in enumerate(data) if b >= 0xC0), None)
        if cut is None:
            self.write_chunk(data)
            return
        self.write_chunk(data[:cut])
        time.sleep(0.01)  # make the two halves separate reads on the client
        self.write_chunk(data[cut:])


_MID_FAULTS = (Fault.MIDSTREAM_ERROR, Fault.MALFORMED, Fault.TRUNCATED, Fault.STALL)


class OllamaServer(SimServer):
    """SimServer plus Ollama's model store, loaded runners and host check."""

    def __init__(self, port: int = 0, **options: Any) -> None:
        super().__init__(OllamaHandler, port, **options)
        extra = options.get("models") or []
        models = [SimModel.from_option(m) for m in [self.model, *extra]]
        self.store: dict[str, SimModel] = {m.name: m for m in models}
        self.models = list(self.store)
        self.pullable: set[str] = {full_name(n) for n in options.get("pullable", ("tinyllama",))}
        self.loaded: dict[str, Loaded] = {}
        self.host_check: bool = options.get("host_check", True)
        self.default_keep_alive = 300.0
        self.default_context = int(options.get("default_context", DEFAULT_CONTEXT))
        # A runner that loads less than asked (memory-limited): /api/ps then says so.
        self.max_context: int | None = options.get("max_context")

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that stops reading (Stop button, timeout) is normal, not a server fault.
        if isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            return
        super().handle_error(request, client_address)

    def find(self, name: str) -> SimModel | None:
        return self.store.get(full_name(name)) if name else None

    def mark_loaded(self, model: SimModel, keep_alive: float, context: int) -> None:
        expires = float("inf") if keep_alive == float("inf") else time.time() + keep_alive
        if keep_alive == 0:
            self.loaded.pop(model.name, None)
            return
        self.loaded[model.name] = Loaded(model, context, expires)

    def expire(self) -> None:
        now = time.time()
        for name in [n for n, item in self.loaded.items() if item.expires <= now]:
            del self.loaded[name]

    def chat_requests(self) -> list[Any]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/api/chat")]


def _recorded(handler: SimHandler, body: Any) -> Any:
    from tests.servers.base import RecordedRequest

    return RecordedRequest(handler.command, handler.path,
                           {k.lower(): v for k, v in handler.headers.items()}, body)


def make_server(port: int = 0, **options: Any) -> OllamaServer:
    """An Ollama simulator on 127.0.0.1 (not started). Options: ``model`` (default
    ``sim-model``, all capabilities), ``models`` (extra names or SimModel fields),
    ``pullable`` (names ``/api/pull`` can fetch), ``host_check`` (default True),
    ``load_seconds``, ``prompt_ns_per_token``, ``eval_ns_per_token``, ``default_context``,
    ``max_context`` (the most context a runner loads, whatever num_ctx asks)."""
    return OllamaServer(port, **options)


__all__ = ["BUSY", "BUSY_MESSAGE", "OllamaServer", "SimModel", "make_server"]
