"""A photo prepared by services.image_prep for each protocol, sent through the real provider
class to that protocol's simulator (real HTTP on 127.0.0.1), arrives in the protocol's shape:
a data URL in ``image_url`` (OpenAI-compatible, Azure), bare base64 in ``images`` (Ollama),
base64 ``source`` blocks (Anthropic), ``inlineData`` (Gemini; Vertex in express mode), ``image.source.bytes``
(Bedrock Converse), a data URI ``image`` input (Replicate); and what the simulator received,
decoded, is the downscaled, upright, metadata-free image."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image

from tests.providers.cloud_sims import BEDROCK_MODEL, FAST, bedrock_provider, clear_ambient_aws, posts
from tests.providers.ollama_support import make_provider as ollama_provider
from tests.providers.openai_sims import make_provider as openai_provider
from tests.providers.openai_sims import running
from tests.servers import anthropic, azure, bedrock, gemini, ollama, replicate
from tests.servers.base import SimServer
from tests.services.image_samples import CAMERA, encode, photo
from victor_gui.errors import BadRequestError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.registry import ProviderRegistry
from victor_gui.providers.types import ImagePart, Message, TextPart
from victor_gui.services.image_limits import IMAGE_LIMITS, fit_size, protocol_of
from victor_gui.services.image_prep import prepare_image

STORED = (3600, 2400)  # a landscape sensor frame, EXIF orientation 6: shown as 2400×3600
SHOWN = (2400, 3600)


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = CAMERA
    exif.get_ifd(0x8825).update({1: "N", 2: (52.0, 22.0, 7.25), 3: "E", 4: (4.0, 53.0, 1.5)})
    return encode(photo(*STORED, seed=7), "JPEG", quality=92, exif=exif)


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_ambient_aws(monkeypatch)


@dataclass(frozen=True)
class Wire:
    """How to reach one protocol's simulator and where its image lands in the request body."""

    provider: str  # catalog name: its protocol picks the IMAGE_LIMITS row
    model: str
    server: Callable[[], AbstractContextManager[SimServer]]
    client: Callable[[SimServer], BaseProvider]
    extract: Callable[[dict[str, Any]], tuple[str, str]]  # body -> (media type, base64)


def _data_url(url: str) -> tuple[str, str]:
    head, _, data = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head
    return head[5:-7], data


def _openai(body: dict[str, Any]) -> tuple[str, str]:
    [part] = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
    return _data_url(part["image_url"]["url"])


def _ollama(body: dict[str, Any]) -> tuple[str, str]:
    [data] = body["messages"][-1]["images"]
    assert not data.startswith("data:")  # bare base64, no prefix (servers.md §1.4)
    return "", data


def _anthropic(body: dict[str, Any]) -> tuple[str, str]:
    [block] = [b for b in body["messages"][-1]["content"] if b["type"] == "image"]
    assert block["source"]["type"] == "base64"
    return block["source"]["media_type"], block["source"]["data"]


def _gemini(body: dict[str, Any]) -> tuple[str, str]:
    [part] = [p for p in body["contents"][-1]["parts"] if "inlineData" in p]
    return part["inlineData"]["mimeType"], part["inlineData"]["data"]


def _bedrock(body: dict[str, Any]) -> tuple[str, str]:
    [block] = [b for b in body["messages"][-1]["content"] if "image" in b]
    return "image/" + block["image"]["format"], block["image"]["source"]["bytes"]


def _replicate(body: dict[str, Any]) -> tuple[str, str]:
    return _data_url(body["input"]["image"])


@contextmanager
def _dialect(name: str, **options: Any) -> Iterator[SimServer]:
    with running(name, **options) as server:
        yield server


AZURE_KEY = "azure-key-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-api03-sim0001"
GOOGLE_KEY = "AIzaSyD-sim-key-000001"
VERTEX_KEY = "vertex-express-key-0001"
REPLICATE_KEY = "r8_simtoken000001"


def _create(name: str, server: SimServer, key: str, suffix: str = "") -> BaseProvider:
    return ProviderRegistry.create(name, api_key=key, base_url=server.url + suffix, retry_policy=FAST)


WIRES = {
    "llamacpp": Wire("llamacpp", "sim-model", lambda: _dialect("llamacpp", vision=True),
                     lambda s: openai_provider("llamacpp", s), _openai),
    "lmstudio": Wire("lmstudio", "qwen2.5-vl-7b", lambda: _dialect("lmstudio", model="qwen2.5-vl-7b"),
                     lambda s: openai_provider("lmstudio", s), _openai),
    "azure": Wire("azure", "gpt-4o-deploy", lambda: azure.make_server(api_key=AZURE_KEY),
                  lambda s: _create("azure", s, AZURE_KEY), _openai),
    "ollama": Wire("ollama", "sim-model", lambda: ollama.make_server(),
                   lambda s: ollama_provider(s.url), _ollama),
    "anthropic": Wire("anthropic", "claude-sim-4", lambda: anthropic.make_server(api_key=ANTHROPIC_KEY),
                      lambda s: _create("anthropic", s, ANTHROPIC_KEY), _anthropic),
    "google": Wire("google", "gemini-sim-flash", lambda: gemini.make_server(api_key=GOOGLE_KEY),
                   lambda s: _create("google", s, GOOGLE_KEY), _gemini),
    "vertex": Wire("vertex", "gemini-sim-flash", lambda: gemini.make_server(api_key=VERTEX_KEY),
                   lambda s: ProviderRegistry.create("vertex", api_key=VERTEX_KEY, base_url=s.url,
                                                     project="p1", retry_policy=FAST), _gemini),
    "bedrock": Wire("bedrock", BEDROCK_MODEL, lambda: bedrock.make_server(),
                    lambda s: bedrock_provider(s), _bedrock),
    "replicate": Wire("replicate", "meta/sim-llama-instruct",
                      lambda: replicate.make_server(api_key=REPLICATE_KEY),
                      lambda s: _create("replicate", s, REPLICATE_KEY, "/v1"), _replicate),
}


def _the_request(server: SimServer) -> dict[str, Any]:
    bodies = [r.body for r in posts(server) if isinstance(r.body, dict) and "image" in str(r.body)]
    assert len(bodies) == 1, [r.path for r in server.requests]
    return bodies[0]


@pytest.mark.parametrize("name", sorted(WIRES))
async def test_prepared_photo_arrives_in_the_protocol_shape_downscaled(name: str, camera_jpeg: bytes,
                                                                      ) -> None:
    wire = WIRES[name]
    protocol = protocol_of(wire.provider)
    limits = IMAGE_LIMITS[protocol]
    prepared = prepare_image(camera_jpeg, protocol, name="IMG_0042.JPG")
    part = ImagePart.from_bytes(prepared.data, prepared.media_type)
    with wire.server() as server:
        provider = wire.client(server)
        try:
            question = Message(role="user", content=[TextPart(text="What is this?"), part])
            reply = await provider.chat([question], model=wire.model, max_tokens=64)
        finally:
            await provider.close()
        assert reply.content
        media_type, data = wire.extract(_the_request(server))
    received = base64.b64decode(data, validate=True)
    assert received == prepared.data  # sent as prepared, byte for byte
    image = Image.open(io.BytesIO(received))
    assert image.size == fit_size(*SHOWN, limits) == (prepared.width, prepared.height)
    assert image.height > image.width  # upright: EXIF orientation 6 applied
    assert max(image.size) <= limits.long_side < max(SHOWN)  # downscaled
    assert len(received) <= limits.max_bytes
    assert Image.MIME[image.format or ""] == prepared.media_type in limits.media_types
    assert media_type in ("", prepared.media_type)  # Ollama's bare base64 carries no type
    assert CAMERA.encode() not in received and len(image.getexif()) == 0  # no EXIF, no GPS


@pytest.mark.parametrize("name", ["anthropic", "bedrock"])
async def test_the_unprepared_photo_is_refused_where_the_limit_is_documented(name: str, camera_jpeg: bytes,
                                                                             ) -> None:
    """The simulators enforce the per-image limits (Anthropic 5 MB of base64, Bedrock 3.75 MB):
    the 5 MB camera JPEG as it is comes back 400; prepared, it goes (test above)."""
    assert len(camera_jpeg) > 3_932_160
    wire = WIRES[name]
    with wire.server() as server:
        provider = wire.client(server)
        try:
            with pytest.raises(BadRequestError, match="exceeds"):
                raw = ImagePart.from_bytes(camera_jpeg, "image/jpeg")
                question = Message(role="user", content=[TextPart(text="What is this?"), raw])
                await provider.chat([question], model=wire.model, max_tokens=64)
        finally:
            await provider.close()
