"""llama.cpp image input: the server's /props decides, so a missing projector is reported
before the request instead of coming back as a retried HTTP 500."""

from __future__ import annotations

import pytest

from tests.providers.openai_sims import make_provider, running
from victor_gui.errors import BadRequestError
from victor_gui.providers.types import ImagePart, Message, TextPart


async def test_llamacpp_without_projector_refuses_images_before_sending() -> None:
    """llama-server without --mmproj answers an image with HTTP 500; /props tells us first."""
    msg = Message(role="user", content=[TextPart(text="see"), ImagePart.from_bytes(b"img")])
    with running("llamacpp", model="qwen2.5-vl-7b", vision=False) as server:
        async with make_provider("llamacpp", server) as provider:
            with pytest.raises(BadRequestError, match="does not take images"):
                await provider.chat([msg], model="qwen2.5-vl-7b")
        assert server.chat_requests() == []
        assert [r.path for r in server.requests] == ["/props"]


async def test_llamacpp_projector_wins_over_the_table() -> None:
    """A model the table thinks is text-only is sent images when the server has a projector."""
    msg = Message(role="user", content=[TextPart(text="see"), ImagePart.from_bytes(b"img")])
    with running("llamacpp", model="sim-model", vision=True) as server:
        async with make_provider("llamacpp", server) as provider:
            reply = await provider.chat([msg], model="sim-model")
        assert reply.content
        sent = server.chat_requests()[0].body["messages"][0]["content"]
        assert sent[1]["type"] == "image_url"
