"""A small, real :class:`~victor_gui.services.tool_types.ToolSource` for the tool-loop tests:
plain Python functions run with real timeouts (``asyncio.timeout``), counted as they run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from victor_gui.providers.types import ImagePart, ToolDefinition
from victor_gui.services.tool_types import ServerTool, ToolOutcome

ToolFn = Callable[[dict[str, Any]], Awaitable[str]]


def _schema(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()},
            "required": list(props)}


async def _add(args: dict[str, Any]) -> str:
    return str(args["a"] + args["b"])


async def _weather(args: dict[str, Any]) -> str:
    return f"Sunny, 21 °C in {args.get('location', 'nowhere')}"


class FunctionTools:
    """Servers of Python tools. ``calls`` lists (server, tool, arguments) as run; ``running`` is
    how many run right now, ``peak`` the most at once; ``cancelled`` counts calls stopped."""

    def __init__(self, slow_s: float = 0.5) -> None:
        async def slow(args: dict[str, Any]) -> str:
            await asyncio.sleep(float(args.get("seconds", slow_s)))
            return "slept"

        async def fail(args: dict[str, Any]) -> str:
            raise RuntimeError("the disk is on fire")

        self.servers: dict[str, dict[str, tuple[ToolDefinition, ToolFn]]] = {
            "calc": {
                "add": (ToolDefinition(name="add", description="Add two numbers.",
                                       parameters=_schema(a="number", b="number")), _add),
                "slow": (ToolDefinition(name="slow", description="Sleep.",
                                        parameters=_schema(seconds="number")), slow),
                "fail": (ToolDefinition(name="fail", description="Always fails."), fail),
            },
            "weather": {
                "get_weather": (ToolDefinition(name="get_weather", description="Weather for a place.",
                                               parameters=_schema(location="string")), _weather),
                "add": (ToolDefinition(name="add", description="Another add.",
                                       parameters=_schema(a="number", b="number")), _add),
            },
        }
        self.images: dict[str, ToolOutcome] = {
            "snap": ToolOutcome("A photo of the desk.",
                                images=(ImagePart.from_bytes(b"\x89PNG-not-really"),)),
        }
        self.servers["camera"] = {
            "snap": (ToolDefinition(name="snap", description="Take a photo."), _weather)}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.running = 0
        self.peak = 0
        self.cancelled = 0

    async def tools(self, servers: Sequence[str]) -> list[ServerTool]:
        return [ServerTool(s, d) for s in servers for d, _ in self.servers.get(s, {}).values()]

    async def call(self, server: str, tool: str, arguments: dict[str, Any], *,
                   timeout_s: float) -> ToolOutcome:
        entry = self.servers.get(server, {}).get(tool)
        if entry is None:
            return ToolOutcome(f"{server} has no tool {tool}.", is_error=True)
        self.calls.append((server, tool, arguments))
        if tool in self.images:
            return self.images[tool]
        started = time.perf_counter()
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            async with asyncio.timeout(timeout_s):
                text = await entry[1](arguments)
        except TimeoutError:
            return ToolOutcome(f"{tool} did not answer within {timeout_s:g} s.", is_error=True,
                               duration_s=time.perf_counter() - started)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        except Exception as exc:
            return ToolOutcome(f"{tool} failed: {exc}", is_error=True,
                               duration_s=time.perf_counter() - started)
        finally:
            self.running -= 1
        return ToolOutcome(text, duration_s=time.perf_counter() - started)
