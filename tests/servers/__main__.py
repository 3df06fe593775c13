"""Run a protocol simulator by hand: ``python -m tests.servers KIND --port N``.

KIND is one of the dialects below. The server answers with its default script until stopped
(Ctrl+C); ``--fault`` makes every chat request misbehave in that way.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading

from tests.servers.base import Fault, Script

# kind -> "module:factory"; each factory is make_server(port=0, **options) -> SimServer.
KINDS: dict[str, str] = {
    "llamacpp": "tests.servers.llamacpp:make_server",
    "vllm": "tests.servers.vllm:make_server",
    "lmstudio": "tests.servers.lmstudio:make_server",
    "ollama": "tests.servers.ollama:make_server",
    "anthropic": "tests.servers.anthropic:make_server",
    "gemini": "tests.servers.gemini:make_server",
    "azure": "tests.servers.azure:make_server",
    "bedrock": "tests.servers.bedrock:make_server",
    "replicate": "tests.servers.replicate:make_server",
    "hf_tgi": "tests.servers.hf_tgi:make_server",
}


def load_factory(kind: str):  # type: ignore[no-untyped-def]
    module_name, _, attr = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module_name), attr)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.servers")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", default="sim-model")
    parser.add_argument("--text", default="Hello from the simulator.")
    parser.add_argument("--fault", choices=(Fault.NONE, *Fault.ALL), default=Fault.NONE)
    args = parser.parse_args()
    server = load_factory(args.kind)(port=args.port, model=args.model)
    server.default_script = Script(text=args.text, fault=args.fault)
    server.start()
    print(f"{args.kind} simulator on {server.url} (model {args.model!r}); Ctrl+C stops", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
