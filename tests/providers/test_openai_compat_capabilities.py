"""The capabilities table drives the OpenAI protocol: vision, native-tool gating (text
fallback through tool_parsing), reasoning and the timeout multiplier."""

from __future__ import annotations

from tests.providers.openai_sims import FAST, HI, collect, make_provider, running
from tests.servers.base import Script
from victor_gui.providers.capabilities import resolve_capabilities
from victor_gui.providers.http import LOCAL_TIMEOUTS
from victor_gui.providers.protocols.openai_compat import OpenAICompatProvider
from victor_gui.providers.types import ToolDefinition

TOOL = ToolDefinition(
    name="lookup",
    description="Look a word up",
    parameters={"type": "object", "properties": {"word": {"type": "string"}}},
)
CALL_TEXT = 'Let me check.\n<tool_call>\n{"name": "lookup", "arguments": {"word": "ossify"}}\n</tool_call>'


async def test_timeout_multiplier_scales_the_read_phase() -> None:
    with running("llamacpp") as server:
        async with make_provider("llamacpp", server) as provider:
            factor = resolve_capabilities("llamacpp", "sim-model").timeout_multiplier
            assert provider.timeouts("sim-model").read == LOCAL_TIMEOUTS.read * factor
            assert provider.timeouts("sim-model").connect == LOCAL_TIMEOUTS.connect


async def test_vision_and_reasoning_follow_the_table() -> None:
    with running("vllm") as server:
        async with make_provider("openai", server, api_key="sk-x") as provider:
            assert provider.supports_vision("gpt-4o") is resolve_capabilities("openai", "gpt-4o").vision
            assert provider.supports_reasoning("o3-mini")
            assert not provider.supports_vision(None)


async def test_no_native_tools_in_the_table_means_text_tools_from_the_start() -> None:
    with running("vllm") as server:
        server.script(Script(text=CALL_TEXT), Script(text=CALL_TEXT, pieces=12))
        provider = OpenAICompatProvider(base_url=server.url + "/v1", name="unknown-box", retry_policy=FAST)
        async with provider:
            assert not resolve_capabilities("unknown-box", "sim-model").native_tool_calls
            whole = await provider.chat(HI, model="sim-model", tools=[TOOL])
            chunks = await collect(provider.stream(HI, model="sim-model", tools=[TOOL]))
        assert whole.tool_calls is not None and whole.tool_calls[0].arguments == {"word": "ossify"}
        assert whole.content == "Let me check." and whole.stop_reason == "tool_calls"
        final = chunks[-1]
        assert final.tool_calls is not None and final.tool_calls[0].name == "lookup"
        assert final.metadata["content_without_tool_calls"] == "Let me check."
        for request in server.chat_requests():
            assert "tools" not in request.body
            system = request.body["messages"][0]
            assert system["role"] == "system" and "lookup" in system["content"]
