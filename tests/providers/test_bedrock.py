"""AWS Bedrock (Converse) against the simulator: botocore SigV4 end to end, bearer API keys,
payloads, event-stream decoding, tools, usage, guardrails, fault matrix. Where credentials come
from (environment, shared files, a missing botocore) is in ``test_bedrock_auth.py``."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.providers import cloud_faults as cf
from tests.providers.cloud_sims import (
    BEDROCK_CREDS,
    BEDROCK_MODEL,
    FAST,
    LOOKUP_TOOL,
    Sleeps,
    bedrock_provider,
    clear_ambient_aws,
    collect,
    posts,
    reasoning_of,
    text_of,
)
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.servers.bedrock import frame, make_server
from victor_gui.errors import (
    ContentFilterError,
    InvalidResponseError,
    MissingAPIKeyError,
    ProviderAuthError,
)
from victor_gui.providers.protocols.bedrock import BedrockProvider
from victor_gui.providers.protocols.eventstream import iter_frames
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall

CREDS = BEDROCK_CREDS
MODEL = BEDROCK_MODEL
TOOL = LOOKUP_TOOL


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_ambient_aws(monkeypatch)


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_event_stream_frames_split_anywhere_are_reassembled() -> None:
    raw = frame(
        {":event-type": "contentBlockDelta", ":message-type": "event"}, b'{"delta": {"text": "\xc3\xa9"}}'
    )
    raw += frame({":event-type": "messageStop", ":message-type": "event"}, b'{"stopReason": "end_turn"}')
    for size in (1, 3, 7, len(raw)):
        frames = [f async for f in iter_frames(_chunks(raw, size))]
        assert [f.event_type for f in frames] == ["contentBlockDelta", "messageStop"]
        assert frames[0].payload == b'{"delta": {"text": "\xc3\xa9"}}'


async def test_event_stream_checksum_and_cut_frames_are_errors() -> None:
    raw = bytearray(frame({":event-type": "x"}, b"{}"))
    raw[-1] ^= 0xFF
    with pytest.raises(InvalidResponseError, match="checksum"):
        [f async for f in iter_frames(_chunks(bytes(raw), 4))]
    whole = frame({":event-type": "x"}, b"{}")
    with pytest.raises(InvalidResponseError, match="inside a frame"):
        [f async for f in iter_frames(_chunks(whole[:-3], 4))]
    assert struct.unpack(">I", whole[8:12])[0] == zlib.crc32(whole[:8])


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(credentials=CREDS) as srv:
        yield srv


def bedrock(server: SimServer, **kw: object) -> BedrockProvider:
    p: BedrockProvider = bedrock_provider(server, **kw)
    return p


async def test_signed_converse_payload(server: SimServer) -> None:
    provider = bedrock(server)
    image = ImagePart.from_bytes(b"\x89PNG....", "image/png")
    reply = await provider.chat(
        [
            Message(role="system", content="One."),
            Message(role="system", content="Two."),
            Message(role="user", content=[TextPart(text="Look"), image]),
        ],
        model=MODEL,
        temperature=0.1,
        max_tokens=64,
    )
    assert reply.content == "Hello from the simulator." and reply.stop_reason == "stop"
    [req] = posts(server)
    assert req.path == "/model/anthropic.claude-sim-v1%3A0/converse"
    assert "Credential=AKIASIMULATOR0000001/" in req.headers["authorization"]
    assert "/eu-west-1/bedrock/aws4_request" in req.headers["authorization"]
    assert req.body == {
        "messages": [
            {
                "role": "user",
                "content": [{"text": "Look"}, {"image": {"format": "png", "source": {"bytes": image.data}}}],
            }
        ],
        "system": [{"text": "One."}, {"text": "Two."}],  # every system message kept
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.1},
    }
    await provider.close()


async def test_wrong_secret_fails_signature_check(server: SimServer) -> None:
    provider = ProviderRegistry.create(
        "bedrock",
        base_url=server.url,
        aws_access_key_id=CREDS.access_key,
        aws_secret_access_key="not/the/right/secret/at/all/000000000",
    )
    with pytest.raises(ProviderAuthError) as info:
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert info.value.status_code == 403 and "signature" in info.value.message
    assert "not/the/right/secret" not in str(info.value)
    await provider.close()


async def test_env_credentials_and_session_token(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDS.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-value-123")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    provider = ProviderRegistry.create("bedrock", base_url=server.url)
    await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    req = posts(server)[0]
    assert req.headers["x-amz-security-token"] == "session-token-value-123"
    assert "/ap-south-1/bedrock/" in req.headers["authorization"]
    assert "x-amz-security-token" in req.headers["authorization"]  # the token is signed too
    await provider.close()


async def test_bearer_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with make_server(credentials=CREDS, bearer="ABSKbedrockapikey0001") as server:
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKbedrockapikey0001")
        provider = ProviderRegistry.create("bedrock", base_url=server.url)
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        assert posts(server)[0].headers["authorization"] == "Bearer ABSKbedrockapikey0001"
        await provider.close()


async def test_no_credentials_fails_before_io(server: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_BEARER_TOKEN_BEDROCK", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    provider = ProviderRegistry.create("bedrock", base_url=server.url)
    with pytest.raises(MissingAPIKeyError, match="AWS_ACCESS_KEY_ID"):
        await provider.chat([Message(role="user", content="Hi")], model=MODEL)
    assert server.requests == []


async def test_stream_tool_use_round_trip_and_usage(server: SimServer) -> None:
    server.options["cache_read"] = 50
    provider = bedrock(server, retry_policy=FAST, sleep=Sleeps())
    server.script(
        Script(
            text="Checking.",
            reasoning="Use the tool.",
            tool_calls=[ScriptedToolCall("lookup", {"q": "x"}, id="tooluse_abc123")],
        )
    )
    history = [Message(role="user", content="find x")]
    chunks, error = await collect(provider.stream(history, model=MODEL, tools=[TOOL]))
    assert error is None
    assert text_of(chunks) == "Checking." and reasoning_of(chunks) == "Use the tool."
    deltas = [d for c in chunks for d in (c.tool_call_deltas or [])]
    assert deltas[0].id == "tooluse_abc123" and "".join(d.arguments_delta for d in deltas) == '{"q": "x"}'
    final = chunks[-1]
    assert final.stop_reason == "tool_calls"
    assert final.tool_calls == [ToolCall(id="tooluse_abc123", name="lookup", arguments={"q": "x"})]
    assert final.usage is not None and (final.usage.cached_tokens, final.usage.prompt_tokens) == (50, 62)
    assert posts(server)[0].path.endswith("/converse-stream")
    assert posts(server)[0].body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "lookup",
                    "description": "Look up",
                    "inputSchema": {"json": TOOL.parameters},
                }
            }
        ]
    }
    history += [
        Message(role="assistant", content="Checking.", tool_calls=final.tool_calls),
        Message(role="tool", tool_call_id="tooluse_abc123", content='{"answer": 42}'),
        Message(role="user", content="thanks"),
    ]
    await provider.chat(history, model=MODEL, tools=[TOOL])
    assert posts(server)[1].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_abc123", "name": "lookup", "input": {"q": "x"}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_abc123",
                        "content": [{"json": {"answer": 42}}],
                        "status": "success",
                    }
                },
                {"text": "thanks"},
            ],
        },
    ]
    await provider.close()


async def test_parallel_results_merge_into_one_turn(server: SimServer) -> None:
    provider = bedrock(server)
    history = [
        Message(role="user", content="go"),
        Message(
            role="assistant", tool_calls=[ToolCall(id="call.1", name="a"), ToolCall(id="call.2", name="b")]
        ),
        Message(role="tool", tool_call_id="call.1", content="A"),
        Message(role="tool", tool_call_id="call.2", content="B"),
    ]
    await provider.chat(history, model=MODEL)  # the simulator rejects split or unsanitised results
    turns = posts(server)[0].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert len(turns[2]["content"]) == 2
    await provider.close()


async def test_thinking_goes_as_model_field(server: SimServer) -> None:
    provider = bedrock(server)
    server.script(Script(text="4", reasoning="2+2"))
    reply = await provider.chat([Message(role="user", content="2+2?")], model=MODEL, thinking=2048)
    assert reply.reasoning == "2+2" and reply.content == "4"
    body = posts(server)[0].body
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert "temperature" not in body["inferenceConfig"]
    await provider.close()


async def test_guardrail_is_content_filter_error() -> None:
    with make_server(credentials=CREDS, stop_reason="guardrail_intervened") as server:
        provider = bedrock(server)
        with pytest.raises(ContentFilterError):
            await provider.chat([Message(role="user", content="Hi")], model=MODEL)
        server.script(Script(text="Partial reply", pieces=2))
        chunks, error = await collect(provider.stream([Message(role="user", content="Hi")], model=MODEL))
        assert isinstance(error, ContentFilterError) and error.partial_content == "Partial reply" == text_of(
            chunks
        )
        await provider.close()


async def test_list_models_from_control_plane(server: SimServer) -> None:
    provider = bedrock(server, control_url=server.url)
    models = await provider.list_models()
    assert [m.id for m in models] == [MODEL]
    assert server.requests[0].path == "/foundation-models?byOutputModality=TEXT"
    await provider.close()


# -- the fault matrix ------------------------------------------------------------------------------


@pytest.fixture
def h(server: SimServer) -> cf.Harness:
    provider = bedrock(server, **cf.fault_options())
    return cf.Harness(server, provider, MODEL, "/model/")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("fault", sorted(cf.HTTP_FAULTS))
async def test_http_faults(h: cf.Harness, fault: str, stream: bool) -> None:
    await cf.http_fault(h, fault, stream=stream)
    await h.provider.close()


@pytest.mark.parametrize("fault", sorted(cf.MID_FAULTS))
async def test_faults_after_output(h: cf.Harness, fault: str) -> None:
    # A frame cut by a dropped connection: the transport error, the partial text kept.
    await cf.mid_fault(h, fault)
    await h.provider.close()


@pytest.mark.parametrize("scenario", sorted(cf.SCENARIOS))
async def test_scenarios(h: cf.Harness, scenario: str) -> None:
    await cf.SCENARIOS[scenario](h)
    await h.provider.close()


async def test_event_stream_hostile_frames_are_bounded_errors() -> None:
    def prelude(total: int, header_len: int) -> bytes:
        head = struct.pack(">II", total, header_len)
        return head + struct.pack(">I", zlib.crc32(head))

    # A frame claiming 1 GiB is refused from its prelude, before any of it is buffered.
    with pytest.raises(InvalidResponseError, match="not plausible"):
        [f async for f in iter_frames(_chunks(prelude(1 << 30, 0) + b"x" * 64, 16))]
    # A total too small for its own headers.
    with pytest.raises(InvalidResponseError, match="not plausible"):
        [f async for f in iter_frames(_chunks(prelude(20, 100) + b"\0" * 8, 16))]
    # Checksums forged correctly around headers that run past their end.
    body = prelude(16 + 3, 3) + b"\x05ab"
    raw = body + struct.pack(">I", zlib.crc32(body))
    with pytest.raises(InvalidResponseError, match="headers"):
        [f async for f in iter_frames(_chunks(raw, 5))]
