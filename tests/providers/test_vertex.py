"""Vertex AI against the Gemini simulator's Vertex routes, with a token source standing in for
Application Default Credentials (no Google credentials exist here)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from tests.providers.cloud_sims import FAST, Sleeps, collect, posts, text_of
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.servers.gemini import make_server
from victor_gui.errors import ProviderAuthError, ProviderUnavailableError
from victor_gui.providers.protocols.vertex import ADCTokenSource, TokenCache, VertexProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import Message, ToolDefinition

TOKEN = "ya29.a0-simulated-access-token-0001"
MODEL = "gemini-sim-flash"


class RecordingTokenSource:
    """A token provider that counts fetches, notes the thread each ran on, and blocks a little
    (as google-auth's HTTP refresh does)."""

    def __init__(self, token: str = TOKEN, lifetime: float = 3600.0, project: str | None = None) -> None:
        self.token = token
        self.lifetime = lifetime
        self.project = project
        self.threads: list[int] = []

    def fetch(self) -> tuple[str, float | None]:
        self.threads.append(threading.get_ident())
        time.sleep(0.05)
        return self.token, time.time() + self.lifetime


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(bearer_token=TOKEN) as srv:
        yield srv


def vertex(server: SimServer, source: RecordingTokenSource, **kw: object) -> VertexProvider:
    p = ProviderRegistry.create(
        "vertexai", base_url=server.url, token_source=source, retry_policy=FAST, sleep=Sleeps(), **kw
    )
    assert isinstance(p, VertexProvider)
    return p


async def test_chat_on_vertex_route_with_bearer_token(
    server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VERTEX_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-proj")
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "europe-west4")
    provider = vertex(server, RecordingTokenSource())
    reply = await provider.chat(
        [Message(role="system", content="Short."), Message(role="user", content="Hi")], model=MODEL
    )
    assert reply.content == "Hello from the simulator."
    [req] = posts(server)
    assert req.path == (
        f"/v1/projects/my-proj/locations/europe-west4/publishers/google/models/{MODEL}:generateContent"
    )
    assert req.headers["authorization"] == f"Bearer {TOKEN}" and "x-goog-api-key" not in req.headers
    assert req.body["systemInstruction"] == {"parts": [{"text": "Short."}]}
    assert {s["threshold"] for s in req.body["safetySettings"]} == {"BLOCK_NONE"}
    await provider.close()


async def test_token_cached_and_refreshed_off_the_loop(
    server: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VERTEX_API_KEY", raising=False)
    source = RecordingTokenSource()
    provider = vertex(server, source, project="p1", location="us-central1")
    loop_thread = threading.get_ident()
    replies = await asyncio.gather(
        *(provider.chat([Message(role="user", content=f"q{i}")], model=MODEL) for i in range(5))
    )
    assert all(r.content for r in replies)
    await provider.chat([Message(role="user", content="again")], model=MODEL)
    assert len(source.threads) == 1, "the token is fetched once and shared"
    assert source.threads[0] != loop_thread, "the refresh must not run on the event loop"
    assert len(posts(server)) == 6
    await provider.close()


async def test_token_refreshed_shortly_before_expiry() -> None:
    now = [1000.0]
    source = RecordingTokenSource(lifetime=0)

    def fetch() -> tuple[str, float | None]:
        source.threads.append(threading.get_ident())
        return f"tok{len(source.threads)}", now[0] + 3600

    source.fetch = fetch  # type: ignore[method-assign]
    cache = TokenCache(source, margin=300, clock=lambda: now[0])
    assert await cache.token() == "tok1"
    now[0] += 3000  # 600 s left: still good
    assert await cache.token() == "tok1"
    now[0] += 400  # 200 s left: inside the margin
    assert await cache.token() == "tok2"
    assert cache.refreshes == 2


async def test_stream_and_tool_round_trip_on_vertex(server: SimServer) -> None:
    provider = vertex(server, RecordingTokenSource(), project="p1")
    server.script(Script(text="Looking.", tool_calls=[ScriptedToolCall("lookup", {"q": "x"})]))
    tool = ToolDefinition(
        name="lookup", parameters={"type": "object", "properties": {"q": {"type": "string"}}}
    )
    chunks, error = await collect(
        provider.stream([Message(role="user", content="find x")], model=MODEL, tools=[tool])
    )
    assert error is None and text_of(chunks) == "Looking."
    calls = chunks[-1].tool_calls
    assert calls is not None and calls[0].name == "lookup"
    assert posts(server)[0].path.endswith(f"/models/{MODEL}:streamGenerateContent?alt=sse")
    history = [
        Message(role="user", content="find x"),
        Message(role="assistant", content="Looking.", tool_calls=calls),
        Message(role="tool", tool_call_id=calls[0].id, content="found"),
    ]
    await provider.chat(history, model=MODEL, tools=[tool])
    assert posts(server)[1].body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "lookup", "response": {"result": "found"}}}],
    }
    await provider.close()


async def test_wrong_token_is_auth_error(server: SimServer) -> None:
    provider = vertex(server, RecordingTokenSource(token="ya29.expired-token-xyz"), project="p1")
    with pytest.raises(ProviderAuthError) as info:
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert info.value.status_code == 401
    assert "ya29.expired-token-xyz" not in str(info.value)
    await provider.close()


async def test_vertex_api_key_alternative(monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server(api_key="vertex-express-key-0001") as server:
        monkeypatch.setenv("VERTEX_API_KEY", "vertex-express-key-0001")
        provider = ProviderRegistry.create("vertex", base_url=server.url, project="p1")
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        req = posts(server)[0]
        assert (
            req.headers["x-goog-api-key"] == "vertex-express-key-0001" and "authorization" not in req.headers
        )
        await provider.close()


async def test_missing_project_is_a_clear_error(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "VERTEX_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    provider = vertex(server, RecordingTokenSource())
    with pytest.raises(ProviderUnavailableError, match="GOOGLE_CLOUD_PROJECT"):
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert posts(server) == []
    await provider.close()


async def test_adc_without_google_auth_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_google(name: str, *args: object, **kwargs: object) -> object:
        if name.startswith("google"):
            raise ImportError("No module named 'google'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_google)
    with pytest.raises(ProviderUnavailableError, match=r'pip install "victor_gui\[vertex\]"'):
        await TokenCache(ADCTokenSource()).token()


def test_default_endpoint_per_location() -> None:
    p = ProviderRegistry.create("vertex", project="p", location="asia-northeast1")
    assert isinstance(p, VertexProvider)
    assert p.model_url("gemini-2.5-pro", "generateContent") == (
        "https://asia-northeast1-aiplatform.googleapis.com/v1/projects/p/locations/asia-northeast1/"
        "publishers/google/models/gemini-2.5-pro:generateContent"
    )
    g = ProviderRegistry.create("vertex", project="p", location="global")
    assert isinstance(g, VertexProvider)
    assert g.model_url("gemini-2.5-pro", "generateContent").startswith(
        "https://aiplatform.googleapis.com/v1/"
    )
