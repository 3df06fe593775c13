"""AWS Bedrock runtime simulator: ``POST /model/{modelId}/converse``, ``/converse-stream``, and the
control plane's ``GET /foundation-models``.

Faithful to what a client observes: SigV4 ``Authorization`` re-computed with botocore over the request as it
arrived (a changed body or header fails like AWS's ``InvalidSignatureException``), bearer API
keys, errors as ``{"message": ...}`` with an ``x-amzn-ErrorType`` header and the status per
exception, ConverseStream as binary event-stream frames (``:event-type`` / ``:message-type``
headers, CRC32s, the ``p`` padding field) including exception frames, and Converse validation of
roles and toolUse/toolResult pairing. Claude's signed extended thinking (issued and checked on
replay) is in :mod:`tests.servers.bedrock_thinking`.
"""

from __future__ import annotations

import hmac
import json
import re
import struct
import uuid
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from tests.servers import bedrock_thinking
from tests.servers.base import Fault, RecordedRequest, Script, SimHandler, SimServer
from tests.servers.quiet import quiet_disconnects

_MODEL = re.compile(r"^/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream)$")
_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
# 3.75 MB per image (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Message.html).
IMAGE_MAX_BYTES = 3_932_160
_AUTH = re.compile(
    r"Credential=(?P<akid>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<sig>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class AwsKeys:
    """The key pair the simulator accepts (``token`` is never checked, only signed)."""

    access_key: str
    secret_key: str
    token: str | None = None


def expected_signature(
    keys: AwsKeys,
    *,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    amz_date: str,
    region: str,
    service: str,
) -> str:
    """The signature AWS would compute for this request as received: botocore's SigV4 over the
    signed headers only, at the request's own ``X-Amz-Date``."""
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(keys, service, region)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream frame with string headers."""
    raw_headers = b"".join(
        bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


class BedrockHandler(SimHandler):
    routes: dict[tuple[str, str], str] = {}

    def _dispatch(self) -> None:
        # Like SimHandler's, but keeps the raw body: the signature covers its exact bytes.
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        try:
            self.body = json.loads(self.raw_body) if self.raw_body else None
        except json.JSONDecodeError:
            self.body = self.raw_body.decode("utf-8", "replace")
        self.server.requests.append(
            RecordedRequest(
                self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.body
            )
        )
        path = self.path.split("?", 1)[0]
        if not self.check_auth():
            return
        if self.command == "GET" and path == "/foundation-models":
            self.send_json(
                200,
                {
                    "modelSummaries": [
                        {
                            "modelId": m,
                            "modelName": m,
                            "providerName": "Anthropic",
                            "inputModalities": ["TEXT", "IMAGE"],
                            "outputModalities": ["TEXT"],
                            "responseStreamingSupported": True,
                        }
                        for m in self.server.models
                    ]
                },
            )
            return
        match = _MODEL.match(path)
        if self.command != "POST" or match is None:
            self.aws_error(404, "UnknownOperationException", "Unknown operation")
            return
        self.converse(unquote(match["model"]), stream=match["action"] == "converse-stream")

    do_GET = _dispatch
    do_POST = _dispatch

    def aws_error(self, status: int, kind: str, message: str) -> None:
        self.send_json(
            status,
            {"message": message},
            {
                "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                "x-amzn-RequestId": str(uuid.uuid4()),
            },
        )

    # -- auth ------------------------------------------------------------------------------------

    def check_auth(self) -> bool:
        auth = self.headers.get("authorization") or ""
        bearer = self.server.options.get("bearer")
        if auth.startswith("Bearer "):
            if bearer is not None and auth == f"Bearer {bearer}":
                return True
            self.aws_error(
                403,
                "UnrecognizedClientException",
                "Invalid API Key format: Must start with pre-defined prefix",
            )
            return False
        creds: AwsKeys | None = self.server.options.get("credentials")
        if creds is None:
            return True
        match = _AUTH.search(auth)
        if not auth.startswith("AWS4-HMAC-SHA256 ") or match is None:
            self.aws_error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
            return False
        if match["akid"] != creds.access_key:
            self.aws_error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
            return False
        names = match["signed"].split(";")
        amz_date = self.headers.get("x-amz-date", "")
        if "x-amz-date" not in names or amz_date[:8] != match["day"]:
            self.aws_error(403, "IncompleteSignatureException", "Date must be signed and match the scope")
            return False
        wanted = expected_signature(
            creds,
            method=self.command,
            url=f"http://{self.headers.get('host', '')}{self.path}",
            headers={n: self.headers.get(n, "") for n in names},
            body=self.raw_body,
            amz_date=amz_date,
            region=match["region"],
            service=match["service"],
        )
        if not hmac.compare_digest(wanted, match["sig"]):
            self.aws_error(
                403,
                "InvalidSignatureException",
                "The request signature we calculated does not match "
                "the signature you provided. Check your AWS Secret Access Key and signing method. "
                "Consult the service documentation for details.",
            )
            return False
        return True

    # -- validation ------------------------------------------------------------------------------

    def validate(self, body: Any) -> str | None:
        if not isinstance(body, dict) or not body.get("messages"):
            return (
                "A conversation must start with a user message. Try again with a conversation that starts "
                "with a user message."
            )
        pending: list[str] = []
        for i, msg in enumerate(body["messages"]):
            if msg.get("role") not in ("user", "assistant"):
                return f"Invalid role at messages.{i}"
            if i == 0 and msg["role"] != "user":
                return "A conversation must start with a user message."
            if i and body["messages"][i - 1]["role"] == msg["role"]:
                return "A conversation must alternate between user and assistant roles."
            content = msg.get("content") or []
            results = [b["toolResult"]["toolUseId"] for b in content if "toolResult" in b]
            if sorted(results) != sorted(pending):
                missing = [p for p in pending if p not in results]
                if missing:
                    return (
                        f"Expected toolResult blocks at messages.{i}.content for the following Ids: "
                        f"{', '.join(missing)}"
                    )
                return (
                    f"The number of toolResult blocks at messages.{i}.content exceeds the number of toolUse "
                    "blocks of previous turn."
                )
            pending = []
            for j, block in enumerate(content):
                image = block.get("image") if isinstance(block.get("image"), dict) else None
                encoded = str((image.get("source") or {}).get("bytes", "")) if image else ""
                if len(encoded) * 3 // 4 > IMAGE_MAX_BYTES:
                    # The documented limit (API_runtime_Message: 3.75 MB per image); wording unverified.
                    return f"messages.{i}.content.{j}.image.source.bytes: image exceeds the 3.75 MB maximum"
                if "text" in block and not block["text"].strip():
                    return f"The text field in the ContentBlock object at messages.{i}.content.{j} is blank."
                if "toolUse" in block:
                    if not _ID.match(block["toolUse"].get("toolUseId", "")):
                        return (
                            f"1 validation error detected: Value at 'messages.{i}.member.content.{j}.member."
                            "toolUse.toolUseId' failed to satisfy constraint: Member must satisfy regular "
                            "expression pattern: [a-zA-Z0-9_-]+"
                        )
                    pending.append(block["toolUse"]["toolUseId"])
        if pending:
            return "Expected toolResult blocks for the final toolUse turn"
        return bedrock_thinking.check(self.server, body)

    # -- routes ----------------------------------------------------------------------------------

    def converse(self, model: str, *, stream: bool) -> None:
        problem = self.validate(self.body)
        if problem:
            self.aws_error(400, "ValidationException", problem)
            return
        script = self.next_script()
        fault = script.fault
        if fault == Fault.UNAUTHORIZED:
            self.aws_error(
                403, "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        elif fault == Fault.UNKNOWN_MODEL or model not in self.server.models:
            self.aws_error(400, "ValidationException", "The provided model identifier is invalid.")
        elif fault == Fault.RATE_LIMIT:
            self.aws_error(429, "ThrottlingException", "Too many requests, please wait before trying again.")
        elif fault == Fault.SERVER_ERROR:
            self.aws_error(
                500,
                "InternalServerException",
                "The system encountered an unexpected error during processing. Try your request again.",
            )
        elif fault == Fault.LOADING:
            self.aws_error(503, "ServiceUnavailableException", "Bedrock is unable to process your request.")
        elif fault == Fault.HTML:
            self.html_error_page(502)
        elif fault == Fault.CONTEXT_OVERFLOW:
            self.aws_error(400, "ValidationException", "Input is too long for requested model.")
        elif fault == Fault.STALL and not stream:
            self.stall()
        elif stream:
            try:
                self.stream(script)
            except (BrokenPipeError, ConnectionResetError):
                self.server.disconnects.append(self.path)  # type: ignore[attr-defined]
                self.close_connection = True
        else:
            self.whole(script)

    def usage(self, script: Script) -> dict[str, int]:
        read = int(self.server.options.get("cache_read", 0))
        out = script.completion_count()
        return {
            "inputTokens": script.prompt_tokens,
            "outputTokens": out,
            "totalTokens": script.prompt_tokens + out + read,
            "cacheReadInputTokens": read,
            "cacheWriteInputTokens": 0,
        }

    def whole(self, script: Script) -> None:
        self.pause(script)
        if script.fault == Fault.MALFORMED:
            self.send_bytes(200, b'{"output": {"message": ', "application/json")
            return
        parts = bedrock_thinking.issue(
            self.server, script.reasoning, thinking=bedrock_thinking.thinking_on(self.body)
        )
        content = bedrock_thinking.converse_blocks(parts)
        if script.text:
            content.append({"text": script.text})
        for call in script.tool_calls:
            content.append(
                {
                    "toolUse": {
                        "toolUseId": call.id or "tooluse_" + uuid.uuid4().hex[:22],
                        "name": call.name,
                        "input": call.arguments,
                    }
                }
            )
        reply = {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self.server.options.get("stop_reason")
            or ("tool_use" if script.tool_calls else "end_turn"),
            "usage": self.usage(script),
            "metrics": {"latencyMs": 321},
        }
        data = json.dumps(reply).encode()
        if script.fault == Fault.TRUNCATED:
            self.send_truncated(200, data, "application/json")
            return
        self.send_bytes(200, data, "application/json")

    def event(self, kind: str, payload: dict[str, Any], script: Script | None = None) -> None:
        data = frame(
            {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
            json.dumps({**payload, "p": "abcdefghij"}, ensure_ascii=False).encode(),
        )
        self.write_frame(data, script)

    def stream(self, script: Script) -> None:
        self.start_stream("application/vnd.amazon.eventstream")
        if self.stall_at_start(script):
            return
        self.event("messageStart", {"role": "assistant"})
        index = 0
        thinking = bedrock_thinking.thinking_on(self.body)
        for part in bedrock_thinking.issue(self.server, script.reasoning, thinking=thinking):
            for delta in bedrock_thinking.stream_deltas(part):  # reasoning has no contentBlockStart
                self.event(
                    "contentBlockDelta", {"contentBlockIndex": index, "delta": {"reasoningContent": delta}}
                )
            self.event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        pieces = script.text_pieces()
        for n, piece in enumerate(pieces):
            if n == script.fail_after and self.mid_fault(script):
                return
            self.pause(script)
            self.event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}}, script)
        if pieces:
            self.event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        if script.fail_after >= len(pieces) and self.mid_fault(script):
            return
        for call in script.tool_calls:
            self.event(
                "contentBlockStart",
                {
                    "contentBlockIndex": index,
                    "start": {
                        "toolUse": {
                            "toolUseId": call.id or "tooluse_" + uuid.uuid4().hex[:22],
                            "name": call.name,
                        }
                    },
                },
            )
            raw = json.dumps(call.arguments)
            for part in (raw[: len(raw) // 2], raw[len(raw) // 2 :]):
                self.event(
                    "contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": part}}}
                )
            self.event("contentBlockStop", {"contentBlockIndex": index})
            index += 1
        stop = self.server.options.get("stop_reason") or ("tool_use" if script.tool_calls else "end_turn")
        self.event("messageStop", {"stopReason": stop})
        self.event("metadata", {"usage": self.usage(script), "metrics": {"latencyMs": 321}})
        self.end_stream()

    def truncated_frame(self) -> bytes:
        data = frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b'{"delta": {}}')
        return data[: len(data) // 2]  # cut inside a frame

    def midstream_error(self) -> None:
        self.write_chunk(
            frame(
                {
                    ":exception-type": "modelStreamErrorException",
                    ":message-type": "exception",
                    ":content-type": "application/json",
                },
                b'{"message": "Model stream error", "originalStatusCode": 500}',
            )
        )

    def malformed_frame(self) -> bytes:
        return frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b'{"delta": ')


def make_server(port: int = 0, **options: Any) -> SimServer:
    """A Bedrock simulator. ``credentials=AwsKeys(...)`` enforces SigV4 with that key pair;
    ``bearer=`` accepts a Bedrock API key; ``cache_read=`` the cached prompt tokens;
    ``stop_reason=`` (e.g. ``guardrail_intervened``) how every reply ends;
    ``redacted_thinking=True`` adds a ``redactedContent`` block to each thinking reply."""
    if "model" not in options:
        options["model"] = "anthropic.claude-sim-v1:0"
    server = SimServer(BedrockHandler, port, **options)
    server.disconnects = []  # type: ignore[attr-defined]
    return quiet_disconnects(server)
