"""Images a tool returned reach a model that takes images, in each protocol's own shape, checked
in the request body the simulator received: Anthropic ``tool_result`` content blocks, Ollama's
``images`` on the tool message, Gemini ``inlineData`` after the ``functionResponse`` in the same
user turn, Bedrock image blocks in the ``toolResult``, and for OpenAI-compatible servers (a tool
message cannot carry images) one ``user`` message after the turn's results. A model without
vision gets the text only, which says the images were left out."""

from __future__ import annotations

import pytest

from tests.providers import ollama_support
from tests.providers.cloud_sims import BEDROCK_CREDS, bedrock_provider, clear_ambient_aws, collect, posts
from tests.providers.openai_sims import make_provider as openai_provider
from tests.providers.openai_sims import running
from tests.servers import anthropic as anthropic_sim
from tests.servers import bedrock as bedrock_sim
from tests.servers import gemini as gemini_sim
from tests.servers import ollama as ollama_sim
from tests.servers.base import Script
from victor_gui.providers.protocols.tool_history import repair_history
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ImagePart, Message, TextPart, ToolCall

ANT_KEY = "sk-ant-api03-toolimages00000001"
GEM_KEY = "AIzaSyD-toolimages-00000000001"
PNG = ImagePart.from_bytes(b"\x89PNG-screenshot", "image/png")
JPG = ImagePart.from_bytes(b"jpeg-chart", "image/jpeg")
LEFT_OUT = "2 image(s) left out: this model does not take images"


def history(call_id: str = "toolu_shot1") -> list[Message]:
    """A turn where the model called ``screenshot`` and the tool answered with text and two images."""
    return [
        Message(role="user", content="What is on my screen?"),
        Message(role="assistant", tool_calls=[ToolCall(id=call_id, name="screenshot", arguments={})]),
        Message(role="tool", tool_call_id=call_id, name="screenshot",
                content=[TextPart(text="captured 2 screens"), PNG, JPG]),
    ]


async def test_anthropic_tool_result_carries_text_then_images() -> None:
    with anthropic_sim.make_server(api_key=ANT_KEY) as server:
        server.script(Script(text="A terminal."))
        provider = ProviderRegistry.create("anthropic", api_key=ANT_KEY, base_url=server.url)
        _, error = await collect(provider.stream(history(), model=server.model))
        assert error is None, error
    body = posts(server)[-1].body
    result = body["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_shot1"
    assert result["content"] == [
        {"type": "text", "text": "captured 2 screens"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG.data}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPG.data}},
    ]


async def test_gemini_images_follow_the_function_response_in_the_same_turn() -> None:
    with gemini_sim.make_server(api_key=GEM_KEY) as server:
        server.script(Script(text="A terminal."))
        provider = ProviderRegistry.create("google", api_key=GEM_KEY, base_url=server.url)
        _, error = await collect(provider.stream(history(), model=server.model))
        assert error is None, error
    contents = posts(server)[-1].body["contents"]
    turn = contents[-1]
    assert turn["role"] == "user"
    assert turn["parts"][0]["functionResponse"]["name"] == "screenshot"
    assert turn["parts"][1:] == [
        {"inlineData": {"mimeType": "image/png", "data": PNG.data}},
        {"inlineData": {"mimeType": "image/jpeg", "data": JPG.data}},
    ]


async def test_gemini_images_of_parallel_calls_come_after_all_responses() -> None:
    messages = [
        Message(role="user", content="Two shots"),
        Message(role="assistant", tool_calls=[ToolCall(id="a", name="left", arguments={}),
                                              ToolCall(id="b", name="right", arguments={})]),
        Message(role="tool", tool_call_id="a", name="left", content=[TextPart(text="L"), PNG]),
        Message(role="tool", tool_call_id="b", name="right", content="R"),
    ]
    with gemini_sim.make_server(api_key=GEM_KEY) as server:
        server.script(Script(text="ok"))
        provider = ProviderRegistry.create("google", api_key=GEM_KEY, base_url=server.url)
        _, error = await collect(provider.stream(messages, model=server.model))
        assert error is None, error
    parts = posts(server)[-1].body["contents"][-1]["parts"]
    assert [p["functionResponse"]["name"] for p in parts[:2]] == ["left", "right"]
    assert parts[2:] == [{"inlineData": {"mimeType": "image/png", "data": PNG.data}}]


async def test_bedrock_tool_result_carries_image_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_ambient_aws(monkeypatch)
    with bedrock_sim.make_server(credentials=BEDROCK_CREDS) as server:
        server.script(Script(text="A terminal."))
        provider = bedrock_provider(server)
        _, error = await collect(provider.stream(history(), model=server.model))
        assert error is None, error
    result = posts(server)[-1].body["messages"][-1]["content"][0]["toolResult"]
    assert result["content"] == [
        {"text": "captured 2 screens"},
        {"image": {"format": "png", "source": {"bytes": PNG.data}}},
        {"image": {"format": "jpeg", "source": {"bytes": JPG.data}}},
    ]


async def test_ollama_tool_message_carries_images_for_a_vision_model() -> None:
    with ollama_sim.make_server(model="sim-model") as server:  # sim-model: vision among its capabilities
        provider = ollama_support.make_provider(server.url)
        await provider.show_model("sim-model")
        await ollama_support.collect(provider, history())
        tool = ollama_support.last_chat(server).body["messages"][-1]
    assert tool["role"] == "tool" and tool["tool_name"] == "screenshot"
    assert tool["content"] == "captured 2 screens"
    assert tool["images"] == [PNG.data, JPG.data]


async def test_ollama_model_without_vision_gets_text_only() -> None:
    with ollama_sim.make_server(models=[ollama_support.PLAIN]) as server:
        provider = ollama_support.make_provider(server.url)
        await provider.show_model("plain")
        await ollama_support.collect(provider, history(), model="plain")
        tool = ollama_support.last_chat(server).body["messages"][-1]
    assert "images" not in tool
    assert tool["content"] == f"captured 2 screens\n[{LEFT_OUT}]"


async def test_openai_compatible_images_follow_the_results_as_one_user_message() -> None:
    messages = [
        Message(role="user", content="Two shots"),
        Message(role="assistant", tool_calls=[ToolCall(id="c1", name="screenshot", arguments={}),
                                              ToolCall(id="c2", name="clock", arguments={})]),
        Message(role="tool", tool_call_id="c1", name="screenshot", content=[TextPart(text="shot"), PNG, JPG]),
        Message(role="tool", tool_call_id="c2", name="clock", content="12:00"),
    ]
    with running("vllm", model="sim-model", vision=True) as server:
        async with openai_provider("vllm", server, vision=True) as provider:
            await provider.chat(messages, model="sim-model")
        sent = server.chat_requests()[-1].body["messages"]
    assert [m["role"] for m in sent[-3:]] == ["tool", "tool", "user"]
    assert sent[-3] == {"role": "tool", "tool_call_id": "c1", "content": "shot"}
    assert sent[-1]["content"] == [
        {"type": "text", "text": "Images returned by the tool screenshot:"},
        {"type": "image_url", "image_url": {"url": PNG.to_data_url()}},
        {"type": "image_url", "image_url": {"url": JPG.to_data_url()}},
    ]


async def test_llamacpp_without_vision_gets_the_tool_text_only() -> None:
    with running("llamacpp", model="sim-model", vision=False) as server:
        async with openai_provider("llamacpp", server) as provider:
            await provider.chat(history("call_1"), model="sim-model")
        sent = server.chat_requests()[-1].body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_1",
                        "content": f"captured 2 screens\n[{LEFT_OUT}]"}
    assert not any(isinstance(m.get("content"), list) for m in sent)


def test_replay_for_a_model_without_vision_leaves_tool_images_out() -> None:
    """A chat whose tool images were kept (vision model) continued on a model without vision."""
    repaired = repair_history(history(), vision=False, replay=True)
    tool = repaired.messages[-1]
    assert tool.images == [] and tool.text == f"captured 2 screens\n[{LEFT_OUT}]"
    assert repaired.repairs["images_omitted"] == 2


def test_a_tool_result_of_images_only_keeps_them() -> None:
    messages = history()
    messages[-1] = messages[-1].model_copy(update={"content": [PNG]})
    tool = repair_history(messages).messages[-1]
    assert tool.text == "(no output)" and tool.images == [PNG]
