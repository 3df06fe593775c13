"""The lines of one simulated ``/api/chat`` reply, built from a :class:`Script`.

Streamed: thinking deltas (``content`` empty), then content deltas, then one line per tool call
(each complete, ``done:false``), then the final line with ``done_reason`` and the nanosecond
metrics. Whole (``stream:false``): one object carrying the full message and the metrics.
"""

from __future__ import annotations

from typing import Any

from tests.servers.base import Script
from tests.servers.ollama_models import go_time


class ChatReply:
    """The lines of one chat reply, built from a script."""

    def __init__(self, name: str, script: Script, body: dict[str, Any], load_ns: int, prompt_tokens: int,
                 metrics: Any) -> None:
        self.name, self.script, self.body = name, script, body
        think = body.get("think")
        self.thinking = script.reasoning if (script.reasoning and think is not False
                                             and not script.inline_think) else ""
        text = script.text
        if script.reasoning and script.inline_think:
            text = f"<think>{script.reasoning}</think>{text}"
        self.pieces = Script(text=text, pieces=script.pieces).text_pieces() if text else []
        self.think_pieces = Script(text=self.thinking, pieces=4).text_pieces() if self.thinking else []
        self.done_reason = "stop"
        limit = (body.get("options") or {}).get("num_predict")
        if isinstance(limit, int) and 0 <= limit < len(self.pieces):
            self.pieces, self.done_reason = self.pieces[:limit], "length"
        count = script.completion_tokens
        if count is None:
            count = max(1, len(self.pieces) + len(self.think_pieces) + len(script.tool_calls))
        self.metrics = metrics(script, prompt_tokens, load_ns, count)

    def _calls(self) -> list[dict[str, Any]]:
        calls = []
        for index, call in enumerate(self.script.tool_calls):
            function = {"index": index, "name": call.name, "arguments": call.arguments}
            entry: dict[str, Any] = {"function": function}
            if call.id:
                entry = {"id": call.id, **entry}
            calls.append(entry)
        return calls

    def _message(self, content: str, thinking: str = "", calls: list[dict[str, Any]] | None = None,
                 ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = calls
        return message

    def _line(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.name, "created_at": go_time(), "message": message, "done": False}

    def final(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.name, "created_at": go_time(), "message": message,
                "done_reason": self.done_reason, "done": True, **self.metrics}

    def whole(self) -> dict[str, Any]:
        return self.final(self._message("".join(self.pieces), self.thinking, self._calls()))

    def stream_lines(self) -> list[dict[str, Any]]:
        lines = [self._line(self._message("", thinking=p)) for p in self.think_pieces]
        lines += [self._line(self._message(p)) for p in self.pieces]
        lines += [self._line(self._message("", calls=[c])) for c in self._calls()]
        lines.append(self.final(self._message("")))
        return lines
