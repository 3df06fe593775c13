"""Normalised, protocol-neutral types every provider speaks (pydantic models).

A conversation is a list of :class:`Message`. Content is plain text or a list of parts (text and
images), so images are never silently dropped. Tool calls always carry an ``id``: adapters for
protocols without ids (Ollama) synthesise stable ones, so a tool result can always be paired with
its call when the conversation moves to another provider.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]

# A tool call's arguments longer than this (characters of JSON text) are a broken or hostile
# server: the reply ends with InvalidResponseError rather than assembling them.
MAX_TOOL_ARGUMENT_CHARS = 8 * 1024 * 1024
# Token counts above this are not counts (no reply has 2**53 tokens; SQLite stops at 2**63).
MAX_TOKEN_COUNT = 2**53

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w=-]+)*;base64,(?P<data>.*)$", re.S)


class _Model(BaseModel):
    """Our base: each model's validator is built on first use, not at import. Most of these
    (stream chunks, completions, tool calls) are not used by a window sitting idle with a chat
    open, and built at import they held ~6 MB of its memory."""

    model_config = ConfigDict(defer_build=True)


class TextPart(_Model):
    """A run of text inside a message."""

    type: Literal["text"] = "text"
    text: str


class ImagePart(_Model):
    """An image inside a message, held as base64 data (never a path, so it survives export)."""

    type: Literal["image"] = "image"
    data: str = Field(description="base64-encoded image bytes, without a data: prefix")
    media_type: str = "image/png"

    @field_validator("data")
    @classmethod
    def _valid_base64(cls, value: str) -> str:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("image data is not valid base64") from exc
        return value

    @classmethod
    def from_data_url(cls, url: str) -> ImagePart:
        """Build from a ``data:image/...;base64,...`` URL."""
        match = _DATA_URL.match(url)
        if not match:
            raise ValueError("not a base64 data: URL")
        return cls(data=match["data"], media_type=match["mime"] or "image/png")

    @classmethod
    def from_bytes(cls, raw: bytes, media_type: str = "image/png") -> ImagePart:
        return cls(data=base64.b64encode(raw).decode("ascii"), media_type=media_type)

    def to_data_url(self) -> str:
        return f"data:{self.media_type};base64,{self.data}"


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


def new_tool_call_id() -> str:
    """A fresh id in the OpenAI style, accepted by every protocol we speak."""
    return "call_" + uuid.uuid4().hex[:24]


class ToolCall(_Model):
    """A complete request from the model to run a tool."""

    id: str = Field(default_factory=new_tool_call_id)
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("arguments", mode="before")
    @classmethod
    def _parse_arguments(cls, value: Any) -> Any:
        # OpenAI-style wires carry arguments as a JSON string; normalise to a dict here once.
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                return {"_raw": value}
            return parsed if isinstance(parsed, dict) else {"_value": parsed}
        return value

    @field_validator("id", mode="before")
    @classmethod
    def _ensure_id(cls, value: Any) -> Any:
        return value or new_tool_call_id()


class ToolCallDelta(_Model):
    """A fragment of a tool call as it streams in, keyed by its position ``index``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments_delta: str = ""


class ToolDefinition(_Model):
    """A tool the model may call: a name, a description and a JSON-Schema for its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Message(_Model):
    """One turn of a conversation."""

    model_config = ConfigDict(extra="ignore")

    role: Role
    content: str | list[ContentPart] = ""
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    # The model's reasoning for an assistant turn; kept for display, never sent back as answer text.
    reasoning: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @property
    def text(self) -> str:
        """The message's text, with image parts left out."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> list[ImagePart]:
        """The message's image parts (empty for plain text)."""
        if isinstance(self.content, str):
            return []
        return [p for p in self.content if isinstance(p, ImagePart)]

    def parts(self) -> list[TextPart | ImagePart]:
        """Content as a list of parts, whatever form it was given in."""
        if isinstance(self.content, str):
            return [TextPart(text=self.content)] if self.content else []
        return list(self.content)


def token_count(value: Any) -> int:
    """A server's token count as an int, or 0 (unknown) when it is not one: negative, above
    :data:`MAX_TOKEN_COUNT`, fractional, infinite, a string or a bool. Every adapter reads its
    counts through this, so an absurd number never reaches the store (where 2**64 overflowed)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not value.is_integer():  # also NaN and ±inf
        return 0
    count = int(value)
    return count if 0 <= count <= MAX_TOKEN_COUNT else 0


class Usage(_Model):
    """Token counts for one request. Reads like the seed's usage dict (``usage["prompt_tokens"]``).

    Every count goes through :func:`token_count`: one a server got wrong is 0 (unknown).
    """

    model_config = ConfigDict(extra="allow")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @field_validator("prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
                     "cache_creation_tokens", "reasoning_tokens", mode="before")
    @classmethod
    def _plausible_count(cls, value: Any) -> int:
        return token_count(value)

    def model_post_init(self, __context: Any) -> None:
        if not self.total_tokens:
            self.total_tokens = token_count(self.prompt_tokens + self.completion_tokens)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def keys(self) -> Iterator[str]:
        return iter(self.model_dump())


class Timings(_Model):
    """Speed figures for one reply, in the units people read: milliseconds and tokens/second."""

    ttft_ms: float | None = Field(default=None, description="time to first token, client-side where measured")
    prompt_tokens_per_second: float | None = None
    tokens_per_second: float | None = Field(default=None, description="generation speed")
    source: Literal["server", "client"] = "client"


class CompletionResponse(_Model):
    """A whole reply."""

    model_config = ConfigDict(extra="allow")

    content: str = ""
    role: str = "assistant"
    tool_calls: list[ToolCall] | None = None
    stop_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    reasoning: str | None = None
    timings: Timings | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    raw_response: Any = Field(default=None, exclude=True, repr=False)

    @field_validator("usage", mode="before")
    @classmethod
    def _usage_from_dict(cls, value: Any) -> Any:
        return Usage(**value) if isinstance(value, dict) else value

    def to_message(self) -> Message:
        """The reply as an assistant :class:`Message` for the history."""
        return Message(role="assistant", content=self.content, tool_calls=self.tool_calls or None,
                       reasoning=self.reasoning or None)


class StreamChunk(_Model):
    """One piece of a streamed reply.

    ``content`` and ``reasoning`` are deltas; ``tool_call_deltas`` are incremental fragments;
    ``tool_calls`` holds complete, assembled calls (on the final chunk). The final chunk has
    ``is_final=True`` and carries ``stop_reason``, ``usage`` and ``timings``.
    """

    model_config = ConfigDict(extra="allow")

    content: str = ""
    is_final: bool = False
    tool_calls: list[ToolCall] | None = None
    stop_reason: str | None = None
    reasoning: str = ""
    tool_call_deltas: list[ToolCallDelta] | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    model: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("reasoning", "content", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class ModelInfo(_Model):
    """A model an endpoint offers, with what it tells about it."""

    model_config = ConfigDict(extra="allow")

    id: str
    provider: str
    context_length: int | None = None
    loaded: bool | None = None
    size_bytes: int | None = None
    quantization: str | None = None
    family: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    raw: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)
