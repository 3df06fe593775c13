"""Every text that reaches the screen reaches the store (issue 16, finding 2).

A hostile OpenAI-compatible server on 127.0.0.1 (a raw HTTP server in a thread, bounded in
time and bytes) splits an emoji's surrogate pair across two SSE events, sends a lone surrogate
in content, reasoning and tool arguments, and reports usage counts no database can hold. The
reply must end ``complete`` and the stored text must equal what the screen was sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from victor_gui.core.text import SurrogateJoiner, clean_json_strings
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Usage, token_count
from victor_gui.services.chat_session import ChatSession, ReplyEvent
from victor_gui.storage import open_store

# Raw SSE ``data:`` payloads, written exactly as a server would put them on the wire: the JSON
# escapes ``\ud83d`` and ``\ude00`` arrive in two different events.
SPLIT_PAIR_EVENTS = [
    r'{"choices":[{"index":0,"delta":{"reasoning_content":"hm \ud83e"}}]}',
    r'{"choices":[{"index":0,"delta":{"reasoning_content":"\udd14 ok"}}]}',
    r'{"choices":[{"index":0,"delta":{"content":"smile \ud83d"}}]}',
    r'{"choices":[{"index":0,"delta":{"content":"\ude00 then lone \ud800 and"}}]}',
    r'{"choices":[{"index":0,"delta":{"content":" low \udc00 end \ud83d"}}]}',
    r'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function",'
    r'"function":{"name":"look","arguments":"{\"q\": \"a\ud83d"}}]}}]}',
    r'{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":'
    r'"\ude00 \udfff\"}"}}]}}]}',
    r'{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],'
    r'"usage":{"prompt_tokens":18446744073709551616,"completion_tokens":-5,"total_tokens":1e300}}',
]


def _handler(events: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self.send_error(404)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length, 1 << 20))
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            for data in events:
                self.wfile.write(f"data: {data}\n\n".encode("ascii"))
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


@contextmanager
def serving(events: list[str]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(events))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_split_pairs_lone_surrogates_and_huge_usage_are_stored_as_shown(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    shown: list[ReplyEvent] = []
    with serving(SPLIT_PAIR_EVENTS) as url:
        provider = ProviderRegistry.create("llamacpp", base_url=url + "/v1", max_retries=0)
        conv = await store.create_conversation("surrogates")
        session = ChatSession(store, conv.id, provider, "sim-model", context_window=8192,
                              on_event=shown.append)
        result = await session.send("smile")
        await provider.close()
    m = await store.get_message(result.message_id)
    await store.close()
    screen_text = "".join(e.text for e in shown if e.kind == "delta")
    screen_reasoning = "".join(e.reasoning for e in shown if e.kind == "delta")
    assert result.status == "complete", result.error
    assert m is not None and m.status == "complete"
    # The pair split across two events is joined; lone surrogates (and a high one the stream
    # ended on) become U+FFFD, on screen and in the store alike.
    assert screen_text == "smile \U0001f600 then lone \ufffd and low \ufffd end \ufffd"
    assert m.content == screen_text
    assert screen_reasoning == "hm \U0001f914 ok" and m.reasoning == screen_reasoning
    assert m.tool_calls is not None
    assert m.tool_calls[0]["arguments"] == {"q": "a\U0001f600 \ufffd"}
    # Counts no real reply has (above 2**53, negative, not an integer) are unknown, not a crash.
    assert m.prompt_tokens in (None, 0) and m.completion_tokens in (None, 0)


def test_joiner_holds_a_trailing_high_surrogate_until_the_next_delta() -> None:
    joiner = SurrogateJoiner()
    assert joiner.feed("a\ud83d") == "a"
    assert joiner.feed("\ude00b") == "a\U0001f600b"[1:]
    assert joiner.feed("\ud83d") == ""
    assert joiner.feed("no partner") == "\ufffdno partner"
    assert joiner.feed("\udc00 \ud800\ud800") == "\ufffd \ufffd"
    assert joiner.flush() == "\ufffd" and joiner.flush() == ""
    assert clean_json_strings({"k\ud800": ["\ud83d\ude00", 1]}) == {"k\ufffd": ["\U0001f600", 1]}


def test_absurd_token_counts_are_unknown() -> None:
    usage = Usage(prompt_tokens=2**64, completion_tokens=-1, total_tokens=float("inf"), cached_tokens="7",
                  reasoning_tokens=12.5, cache_creation_tokens=2**53)
    counts = (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens)
    assert counts == (0, 0, 0, 0)
    assert usage.cache_creation_tokens == 2**53 and usage.total_tokens == 0
    assert token_count(41.0) == 41 and token_count(True) == 0 and token_count(float("nan")) == 0


ERROR_EVENTS = [
    r'{"choices":[{"index":0,"delta":{"content":"half \ud83d"}}]}',
    r'{"error":{"message":"backend \udfff broke","type":"server_error","code":500}}',
]


async def test_an_error_whose_text_has_a_lone_surrogate_is_stored(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    shown: list[ReplyEvent] = []
    with serving(ERROR_EVENTS) as url:
        provider = ProviderRegistry.create("llamacpp", base_url=url + "/v1", max_retries=0)
        conv = await store.create_conversation("surrogates")
        session = ChatSession(store, conv.id, provider, "sim-model", context_window=8192,
                              on_event=shown.append)
        result = await asyncio.wait_for(session.send("go"), 30)
        await provider.close()
    m = await store.get_message(result.message_id)
    await store.close()
    screen_text = "".join(e.text for e in shown if e.kind == "delta")
    assert result.status == "error"
    assert m is not None and m.status == "error"
    assert screen_text == "half \ufffd" and m.content == screen_text
    assert m.error is not None and "backend \ufffd broke" in m.error
