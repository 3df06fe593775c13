"""services.vision against the real llama-server: started without a projector (--mmproj), its
``/props`` says ``modalities.vision: false``, so the model is reported as not taking images
(the capability table has no word on the tiny model), before anything is sent."""

from __future__ import annotations

import pytest

from tests.services.image_samples import encode, photo
from tests.support.llama_server import LlamaServer
from victor_gui.errors import BadRequestError
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.resilience import RetryPolicy
from victor_gui.providers.types import ImagePart, Message, TextPart
from victor_gui.services.image_prep import prepare_image
from victor_gui.services.vision import check_images, refuse_images

pytestmark = pytest.mark.llamacpp

NO_RETRY = RetryPolicy(max_retries=0, base_delay=0.0, max_delay=0.0, jitter=0.0)


async def test_real_llama_server_without_projector_takes_no_images(
    llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{llama_server.port}")
    provider = ProviderRegistry.create("llamacpp", retry_policy=NO_RETRY)
    model = str(llama_server.model)
    async with provider:
        assert await check_images(provider, model) is False
        # What the window does with that answer: the refusal's sentence, nothing sent.
        error = refuse_images("llama.cpp", "tiny", [])
        assert "tiny on llama.cpp does not take images" in str(error) and "--mmproj" in str(error)
        # And the provider itself refuses before the chat request (its own /props check).
        prepared = prepare_image(encode(photo(640, 480), "PNG"), "openai")
        question = Message(role="user", content=[TextPart(text="see"),
                                                 ImagePart.from_bytes(prepared.data, prepared.media_type)])
        with pytest.raises(BadRequestError, match="does not take images"):
            await provider.chat([question], model=model, max_tokens=4)
        # A name the table calls a vision model (single-model mode serves whatever is asked):
        # the server's /props wins. Before the server-root URL fix ("//props" went out as a
        # path with two slashes, a 404) the table's "yes" sent the image into an HTTP 500.
        assert await check_images(provider, "qwen2.5-vl-7b") is False
        with pytest.raises(BadRequestError, match="does not take images"):
            await provider.chat([question], model="qwen2.5-vl-7b", max_tokens=4)
