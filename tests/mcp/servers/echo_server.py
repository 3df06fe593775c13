"""A small MCP server for the host's tests, written with the SDK's server API.

Tools: ``echo``, ``add``, ``slow`` (sleeps), ``crash`` (exits the process mid-call), ``big``
(returns N MB of text), ``image`` (an image content block), ``fail`` (a tool error).
Run: ``python -m tests.mcp.servers.echo_server [--http PORT] [--no-init] [--child-file PATH]``.
``--no-init`` reads stdin and never answers (a server stuck before ``initialize``);
``--child-file`` starts a grandchild (a sleeper) and writes its pid, for the orphan tests.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image

# A 1x1 PNG: enough to prove an image block travels.
PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def build_server() -> MCPServer:
    """The MCPServer with the test tools."""
    server = MCPServer("victor-test-echo", log_level="WARNING")

    @server.tool(description="Echo the text back")
    def echo(text: str) -> str:
        print(f"echo called with {len(text)} chars", file=sys.stderr, flush=True)
        return text

    @server.tool(description="Add two integers")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Get the current weather for a city")
    def get_weather(city: str) -> str:
        return f"Sunny, 21 °C in {city or 'the city'}"

    @server.tool(description="Sleep for some seconds, then answer")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds}"

    @server.tool(description="Exit the process mid-call")
    def crash() -> str:
        print("crashing on purpose", file=sys.stderr, flush=True)
        os._exit(3)

    @server.tool(description="Return N megabytes of text")
    def big(mb: int) -> str:
        return "x" * (mb * 1024 * 1024)

    @server.tool(description="Return a 1x1 PNG image")
    def image() -> Image:
        return Image(data=PNG_1PX, format="png")

    @server.tool(description="Always fails with a tool error")
    def fail() -> str:
        raise ToolError("this tool always fails")

    return server


def weather_server() -> MCPServer:
    """A server with get_weather alone."""
    server = MCPServer("victor-test-weather", log_level="WARNING")

    @server.tool(description="Get the current weather for a city")
    def get_weather(city: str) -> str:
        return f"Sunny, 21 °C in {city or 'the city'}"

    return server


def main() -> None:
    """Parse the flags and serve."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, default=0)
    parser.add_argument("--no-init", action="store_true")
    parser.add_argument("--child-file", default="")
    parser.add_argument("--weather-only", action="store_true",
                        help="offer get_weather alone (the tiny test model calls the tool it is given)")
    args = parser.parse_args()
    print(f"echo server starting pid={os.getpid()}", file=sys.stderr, flush=True)
    if args.child_file:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(args.child_file, "w", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {child.pid}\n")
    if args.no_init:
        print("never answering initialize", file=sys.stderr, flush=True)
        while sys.stdin.readline():
            pass
        time.sleep(600)
        return
    server = build_server() if not args.weather_only else weather_server()
    if args.http:
        server.run("streamable-http", host="127.0.0.1", port=args.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
