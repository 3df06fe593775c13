"""A process that hosts an McpHost, starts the test server (with a grandchild) and waits to be
killed: the SIGKILL orphan test runs it. Prints ``READY <server pid> <grandchild pid>``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.mcp.conftest import echo_config
from victor_gui.services.mcp_host import McpHost


async def main(child_file: str) -> None:
    host = McpHost([echo_config("echo", "--child-file", child_file)])
    tools = await host.tools(["echo"])
    assert tools, host.statuses()
    text = await asyncio.to_thread(Path(child_file).read_text, encoding="utf-8")
    server_pid, grandchild_pid = text.split()
    print(f"READY {server_pid} {grandchild_pid} {host.statuses()[0].pid}", flush=True)
    await asyncio.sleep(600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
