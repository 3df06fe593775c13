"""Claude's extended thinking on Bedrock across a tool loop, against the simulator: the signed
``reasoningContent`` blocks of a tool-calling reply are kept and sent back first in that assistant
turn (whole and streamed), a history without them is refused as Bedrock refuses it, redacted
reasoning goes back untouched, and nothing changes without thinking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.providers.cloud_sims import (
    BEDROCK_CREDS,
    BEDROCK_MODEL,
    LOOKUP_TOOL,
    bedrock_provider,
    clear_ambient_aws,
    collect,
    posts,
    reasoning_of,
)
from tests.servers.base import Script, ScriptedToolCall, SimServer
from tests.servers.bedrock import make_server
from victor_gui.errors import BadRequestError
from victor_gui.providers.protocols.bedrock import BedrockProvider
from victor_gui.providers.types import CompletionResponse, Message, StreamChunk

CREDS = BEDROCK_CREDS
MODEL = BEDROCK_MODEL
TOOL = LOOKUP_TOOL
THOUGHT = "I should look it up."
CALL_ID = "tooluse_abc123"


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_ambient_aws(monkeypatch)


@pytest.fixture
def server() -> Iterator[SimServer]:
    with make_server(credentials=CREDS) as srv:
        yield srv


def bedrock(server: SimServer) -> BedrockProvider:
    p: BedrockProvider = bedrock_provider(server)
    return p


def tool_turn(server: SimServer) -> None:
    server.script(
        Script(
            text="Checking.",
            reasoning=THOUGHT,
            tool_calls=[ScriptedToolCall("lookup", {"q": "x"}, id=CALL_ID)],
        ),
        Script(text="It is 42."),
    )


def follow_up(first: list[Message], reply: CompletionResponse | StreamChunk, text: str) -> list[Message]:
    """The history after the model's tool call: its turn, the tool's result."""
    return [
        *first,
        Message(role="assistant", content=text, tool_calls=reply.tool_calls),
        Message(role="tool", tool_call_id=CALL_ID, content='{"answer": 42}'),
    ]


def issued(server: SimServer) -> dict[str, Any]:
    registry: dict[str, Any] = getattr(server, "issued_thinking", {})
    return registry


async def test_chat_tool_loop_replays_signed_reasoning_first(server: SimServer) -> None:
    provider = bedrock(server)
    tool_turn(server)
    history = [Message(role="user", content="find x")]
    reply = await provider.chat(history, model=MODEL, tools=[TOOL], thinking=2048)
    assert reply.reasoning == THOUGHT and reply.tool_calls and reply.tool_calls[0].id == CALL_ID
    [signed] = reply.metadata["thinking_blocks"]
    signature = signed["reasoningContent"]["reasoningText"]["signature"]
    assert issued(server) == {signature: THOUGHT} and len(signature) > 64

    done = await provider.chat(
        follow_up(history, reply, "Checking."), model=MODEL, tools=[TOOL], thinking=2048
    )
    assert done.content == "It is 42."
    assistant = posts(server)[1].body["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == [
        {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": signature}}},
        {"text": "Checking."},
        {"toolUse": {"toolUseId": CALL_ID, "name": "lookup", "input": {"q": "x"}}},
    ]
    await provider.close()


async def test_stream_tool_loop_replays_signed_reasoning_first(server: SimServer) -> None:
    provider = bedrock(server)
    tool_turn(server)
    history = [Message(role="user", content="find x")]
    chunks, error = await collect(provider.stream(history, model=MODEL, tools=[TOOL], thinking=2048))
    assert error is None and reasoning_of(chunks) == THOUGHT
    final = chunks[-1]
    [signature] = issued(server)
    # Text arrives in pieces, the signature in its own delta: the block is put back together whole.
    assert final.metadata["thinking_blocks"] == [
        {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": signature}}}
    ]
    chunks, error = await collect(
        provider.stream(follow_up(history, final, "Checking."), model=MODEL, tools=[TOOL], thinking=2048)
    )
    assert error is None and "".join(c.content for c in chunks) == "It is 42."
    first = posts(server)[1].body["messages"][1]["content"][0]
    assert first == {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": signature}}}
    await provider.close()


async def test_history_without_reasoning_is_refused_like_bedrock(server: SimServer) -> None:
    """A provider that never saw the reply (a restart, another provider) cannot replay it: the
    simulator answers as Bedrock does, and the error is a typed, non-retryable bad request."""
    tool_turn(server)
    history = [Message(role="user", content="find x")]
    first = bedrock(server)
    reply = await first.chat(history, model=MODEL, tools=[TOOL], thinking=2048)
    await first.close()

    fresh = bedrock(server)
    with pytest.raises(BadRequestError, match="must start with a thinking block") as info:
        await fresh.chat(follow_up(history, reply, "Checking."), model=MODEL, tools=[TOOL], thinking=2048)
    assert info.value.status_code == 400 and not info.value.retryable
    assert "messages.1.content.0.type: Expected `thinking`" in info.value.message
    chunks, error = await collect(
        fresh.stream(follow_up(history, reply, "Checking."), model=MODEL, tools=[TOOL], thinking=2048)
    )
    assert chunks == [] and isinstance(error, BadRequestError) and "thinking" in str(error)
    assert len(posts(server)) == 3  # no retries of a 400
    await fresh.close()


async def test_forged_signature_is_refused(server: SimServer) -> None:
    """The simulator checks replayed signatures as Bedrock does (an unsigned request is accepted
    by a server started without credentials, so this talks to one directly)."""
    with make_server() as open_server:
        url = f"{open_server.url}/model/{MODEL}/converse"
        body = {
            "messages": [
                {"role": "user", "content": [{"text": "find x"}]},
                {
                    "role": "assistant",
                    "content": [
                        {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": "Zm9yZ2Vk"}}},
                        {"toolUse": {"toolUseId": CALL_ID, "name": "lookup", "input": {}}},
                    ],
                },
                {
                    "role": "user",
                    "content": [{"toolResult": {"toolUseId": CALL_ID, "content": [{"text": "42"}]}}],
                },
            ],
            "additionalModelRequestFields": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        }
        async with httpx.AsyncClient(timeout=5) as client:
            answer = await client.post(url, json=body)
            assert answer.status_code == 400
            assert answer.headers["x-amzn-errortype"].startswith("ValidationException:")
            assert answer.json()["message"].endswith(
                "messages.1.content.0: Invalid `signature` in `thinking` block"
            )
            # The same history without thinking is fine: nothing is required or checked then.
            del body["additionalModelRequestFields"]
            assert (await client.post(url, json=body)).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_redacted_reasoning_goes_back_as_is(stream: bool) -> None:
    with make_server(credentials=CREDS, redacted_thinking=True) as server:
        provider = bedrock(server)
        tool_turn(server)
        history = [Message(role="user", content="find x")]
        if stream:
            chunks, error = await collect(provider.stream(history, model=MODEL, tools=[TOOL], thinking=2048))
            assert error is None
            reply: CompletionResponse | StreamChunk = chunks[-1]
        else:
            reply = await provider.chat(history, model=MODEL, tools=[TOOL], thinking=2048)
        blocks = reply.metadata["thinking_blocks"]
        signature, blob = issued(server)  # issued in this order: signed text, then the redacted blob
        assert blocks == [
            {"reasoningContent": {"reasoningText": {"text": THOUGHT, "signature": signature}}},
            {"reasoningContent": {"redactedContent": blob}},
        ]
        await provider.chat(follow_up(history, reply, "Checking."), model=MODEL, tools=[TOOL], thinking=2048)
        assert posts(server)[1].body["messages"][1]["content"][:2] == blocks
        await provider.close()


async def test_without_thinking_nothing_is_signed_or_replayed(server: SimServer) -> None:
    provider = bedrock(server)
    tool_turn(server)
    history = [Message(role="user", content="find x")]
    reply = await provider.chat(history, model=MODEL, tools=[TOOL])
    # Unsigned reasoning (as DeepSeek-R1 sends) is shown but cannot be sent back.
    assert reply.reasoning == THOUGHT and reply.metadata["thinking_blocks"] == []
    await provider.chat(follow_up(history, reply, "Checking."), model=MODEL, tools=[TOOL])
    assistant = posts(server)[1].body["messages"][1]["content"]
    assert [next(iter(b)) for b in assistant] == ["text", "toolUse"]
    assert issued(server) == {}
    await provider.close()


async def test_remembered_reasoning_is_not_sent_once_thinking_is_off(server: SimServer) -> None:
    provider = bedrock(server)
    tool_turn(server)
    history = [Message(role="user", content="find x")]
    reply = await provider.chat(
        history, model=MODEL, tools=[TOOL], thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert reply.metadata["thinking_blocks"]
    await provider.chat(follow_up(history, reply, "Checking."), model=MODEL, tools=[TOOL])
    body = posts(server)[1].body
    assert "additionalModelRequestFields" not in body
    assert all("reasoningContent" not in b for m in body["messages"] for b in m["content"])
    await provider.close()
