"""Headless commands: ``victor-gui providers`` and ``victor-gui doctor`` (no Qt).

``providers`` answers "what can I use?": every registered provider with its category and, in
words, whether it is ready and why ("ready: key from OPENAI_API_KEY", "ready: server up at …",
"no key: set ANTHROPIC_API_KEY or save one in Settings", "server not running"); where a key
comes from is named (the variable or "the keyring"), never the key. ``--provider NAME`` lists
that provider's models.

Both commands also read the profiles (Victor's ``~/.victor/profiles.yaml`` and the app's) and
report a file that cannot be used by file and line.

``doctor`` answers "is my server up, which one is it, what is loaded?": every endpoint of the
server registry (the user's own from settings.yaml — with their keys, headers and TLS settings —,
the seed's variables, the default ports, ``--endpoint``, running server processes) with kind,
state and a diagnosis, plus GPUs and RAM. ``--json`` for scripts. Finding nothing is not a
failure: exit 0 with a plain sentence.

Both read the same :class:`~victor_gui.services.server_registry.ServerRegistry` the window
reads, for one probe cycle (each endpoint probed once), so the CLI and the window never disagree.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from victor_gui.errors import ProviderError
from victor_gui.providers.catalog import PROTOCOLS, SPECS, display_name
from victor_gui.providers.http import PROBE_TIMEOUTS, make_client
from victor_gui.providers.keys import resolve_api_key
from victor_gui.servers.status import EndpointState, EndpointStatus
from victor_gui.services.server_registry import (
    ORIGIN_PROCESS,
    ORIGIN_SETTINGS,
    RegisteredEndpoint,
)

STATE_MARK = {
    EndpointState.UP: "up",
    EndpointState.LOADING: "loading",
    EndpointState.DEGRADED: "degraded",
    EndpointState.DOWN: "down",
    EndpointState.UNAUTHORIZED: "unauthorized",
    EndpointState.NOT_INFERENCE: "not an inference server",
    EndpointState.ERROR: "error",
    EndpointState.UNKNOWN: "unknown",
}


def add_manager_commands(commands: Any) -> None:
    """Register ``providers`` and ``doctor`` on the ``victor-gui`` subparsers."""
    providers = commands.add_parser("providers", help="list providers, their keys and local servers")
    providers.add_argument("--provider", metavar="NAME", help="list the models of one provider")
    providers.add_argument("--base-url", metavar="URL",
                           help="with --provider: the API's base URL (a gateway, a proxy, a test server)")
    providers.add_argument("--json", action="store_true", help="print JSON")
    providers.set_defaults(handler=_run(providers_command))
    doctor = commands.add_parser("doctor", help="check local inference servers, GPUs and memory")
    doctor.add_argument("--endpoint", action="append", default=[], metavar="URL",
                        help="also probe this server URL (repeatable)")
    doctor.add_argument("--no-scan", action="store_true", help="do not look for server processes")
    doctor.add_argument("--no-defaults", action="store_true",
                        help="skip the default ports (only environment, --endpoint and processes)")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=_run(doctor_command))


def _run(command: Callable[[argparse.Namespace, TextIO], Any]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        return int(asyncio.run(command(args, sys.stdout)))
    return handler


def _install_keyring() -> str | None:
    """Consult the OS keyring like the app does; returns a note when no keyring is usable (keys
    then come from environment variables only). Never fatal."""
    from victor_gui.config.secrets import usable_keyring
    from victor_gui.providers import keys

    store, note = usable_keyring()
    if store is not None:
        keys.set_secret_store(store)
    return note


def _keyring_lookup() -> Callable[[str], str | None] | None:
    """The keyring's lookup for endpoint keys and secret headers, or None without a keyring."""
    from victor_gui.config.secrets import usable_keyring

    store, _note = usable_keyring()
    return store.get_key if store is not None else None


async def registry_endpoints(*, extra: Sequence[str] = (), include_defaults: bool = True,
                             scan_processes: bool = True) -> list[RegisteredEndpoint]:
    """One probe cycle of the server registry (hand-added endpoints from settings.yaml first)."""
    from victor_gui.services.server_registry import probe_registry_once

    secrets = await asyncio.to_thread(_keyring_lookup)
    async with make_client(PROBE_TIMEOUTS) as client:
        found = await probe_registry_once(client, extra_urls=extra, include_defaults=include_defaults,
                                          scan_processes=scan_processes, secrets=secrets)
    # A server process may hold helper ports that speak something else: only inference servers
    # that answer are worth a line.
    return [m for m in found if m.status is not None and (m.origin != ORIGIN_PROCESS or (
        m.status.is_inference_server and m.status.state is not EndpointState.DOWN))]


# ---------------------------------------------------------------------------------------------
# providers
# ---------------------------------------------------------------------------------------------

def readiness(spec: Any, answering: Sequence[EndpointStatus], available: bool = True) -> str:
    """In words: can this provider be used now, and if not, what to do."""
    if not available:
        return "not available in this build yet"
    if spec.is_local:
        if not answering:
            return "server not running"
        up = [s for s in answering if s.state is EndpointState.UP]
        if up:
            return "ready: server up at " + ", ".join(s.base_url for s in up)
        first = answering[0]
        return f"not ready: server at {first.base_url} is {STATE_MARK[first.state]}"
    try:
        key, source = resolve_api_key(spec)
    except Exception:
        key, source = None, None
    no_host = spec.default_base_url is None and spec.host_env_vars and \
        not any(os.environ.get(v) for v in spec.host_env_vars)
    if no_host:  # Azure: the key alone does not say where the deployment is
        host = " or ".join(spec.host_env_vars)
        if key:
            return f"no endpoint: set {host}"
        return f"no key or endpoint: set {' or '.join(spec.key_env_vars)} and {host}"
    if key and source:
        return "ready: key from the keyring" if source == "keyring" else \
            f"ready: key from {source.removeprefix('env:')}"
    if not spec.needs_key and not spec.key_env_vars:
        return "uses the SDK's own credentials (not checked here)"
    if not spec.needs_key:
        return f"ready: no key needed ({' or '.join(spec.key_env_vars)} optional)"
    names = " or ".join(spec.key_env_vars) or "a key"
    return f"no key: set {names} or save one in Settings"


async def profile_problems() -> list[dict[str, Any]]:
    """Every problem in the profiles files (file, line, message), for both commands."""
    from victor_gui.config.profiles import load_profiles

    found = await load_profiles()
    return [{"path": e.path, "line": e.line, "message": e.message} for e in found.errors]


def _write_problems(out: TextIO, problems: list[dict[str, Any]]) -> None:
    if not problems:
        return
    out.write("\nProfiles: these could not be used as written\n")
    for problem in problems:
        out.write(f"    {problem['message']}\n")


def key_status(spec: Any) -> str:
    """Where a provider's key comes from — never the key itself."""
    try:
        key, source = resolve_api_key(spec)
    except Exception:
        key, source = None, None
    if key and source:
        return "keyring" if source == "keyring" else source.removeprefix("env:")
    if not spec.needs_key and not spec.key_env_vars:
        return "not needed" if spec.is_local else "SDK credentials (not an API key)"
    if not spec.needs_key:
        return "optional, none set"
    return "missing (" + " or ".join(spec.key_env_vars) + ")" if spec.key_env_vars else "missing"


async def providers_command(args: argparse.Namespace, out: TextIO) -> int:
    keyring_note = _install_keyring()
    if args.provider:
        return await _list_provider_models(args.provider, out, as_json=args.json,
                                           base_url=getattr(args, "base_url", None))
    members = await registry_endpoints(scan_processes=False)
    local: dict[str, list[EndpointStatus]] = {}
    for member in members:
        status = member.status
        if status is not None and member.origin != ORIGIN_SETTINGS and status.state is not EndpointState.DOWN:
            local.setdefault(member.kind, []).append(status)
    own = [{"name": m.name, "kind": m.kind, "url": m.key,
            "state": m.status.state.value if m.status else "unknown",
            "diagnosis": m.status.diagnosis if m.status else ""}
           for m in members if m.origin == ORIGIN_SETTINGS]
    rows: list[dict[str, Any]] = []
    problems = await profile_problems()
    for spec in SPECS:
        answering = [s for s in local.get(spec.name, [])]
        available = PROTOCOLS.get(spec.protocol) is not None
        rows.append({"name": spec.name, "display_name": spec.display_name, "category": spec.category,
                     "available": available,
                     "ready": readiness(spec, answering, available).startswith("ready"),
                     "status": readiness(spec, answering, available),
                     "key": key_status(spec),
                     "local": [{"url": s.base_url, "state": s.state.value} for s in answering]
                     if spec.is_local else None})
    if args.json:
        out.write(json.dumps({"providers": rows, "endpoints": own, "keyring": keyring_note or "available",
                              "profile_errors": problems}, indent=2) + "\n")
        return 0
    out.write(f"{'PROVIDER':<12} {'CATEGORY':<11} STATUS\n")
    for row in rows:
        out.write(f"{row['name']:<12} {row['category']:<11} {row['status']}".rstrip() + "\n")
    if own:
        out.write("\nYour endpoints (settings.yaml)\n")
        for item in own:
            words = "ready" if item["state"] == EndpointState.UP.value else STATE_MARK.get(
                EndpointState(item["state"]), item["state"])
            out.write(f"  {item['name']} ({display_name(item['kind'])}, {item['url']}): {words}\n")
    answering_count = sum(len(v) for v in local.values()) + sum(
        1 for item in own if item["state"] != EndpointState.DOWN.value)
    ready = sum(1 for row in rows if row["ready"])
    out.write(f"\n{len(rows)} providers, {ready} ready; {answering_count} local server(s) answering.\n")
    _write_problems(out, problems)
    if keyring_note:
        out.write(f"Note: {keyring_note}\n")
    if not answering_count:
        out.write("No local inference server answers on the default ports or the configured endpoints "
                  "(run `victor-gui doctor` for details).\n")
    return 0


async def _list_provider_models(name: str, out: TextIO, *, as_json: bool, base_url: str | None = None) -> int:
    from victor_gui.providers.registry import ProviderRegistry

    try:
        async with make_client(PROBE_TIMEOUTS) as client:
            extra = {"base_url": base_url} if base_url else {}
            provider = ProviderRegistry.create(name, http_client=client, **extra)
            try:
                models = await provider.list_models()
            finally:
                await provider.close()
    except ProviderError as exc:
        out.write(f"Cannot list models of {display_name(name)}: {exc.message} [{exc.kind}]\n")
        return 1
    if as_json:
        out.write(json.dumps({"provider": name, "models": [m.model_dump(exclude_none=True) for m in models]},
                             indent=2) + "\n")
        return 0
    if not models:
        out.write(f"{name}: the provider answers but lists no models.\n")
        return 0
    out.write(f"{'MODEL':<48} {'CONTEXT':>8} LOADED\n")
    for m in models:
        loaded = "" if m.loaded is None else ("yes" if m.loaded else "no")
        out.write(f"{m.id:<48} {m.context_length or '':>8} {loaded}".rstrip() + "\n")
    out.write(f"\n{len(models)} model(s).\n")
    return 0


# ---------------------------------------------------------------------------------------------
# doctor
# ---------------------------------------------------------------------------------------------

async def hardware_report() -> dict[str, Any]:
    """GPUs (via the model manager's detector when present) and RAM, JSON-ready."""
    try:
        from victor_gui.sizing.gpu import detect_gpus  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        detect_gpus = None  # type: ignore[assignment,unused-ignore]
    result: dict[str, Any] = {"gpus": [], "ram": None, "notes": []}
    if detect_gpus is not None:
        try:
            report = await asyncio.wait_for(detect_gpus(), 10.0)
            result["gpus"] = [{"vendor": g.vendor, "name": g.name, "total_bytes": g.total,
                               "free_bytes": g.free if getattr(g, "free_known", True) else None}
                              for g in report.gpus]
            if report.ram is not None:
                result["ram"] = {"total_bytes": report.ram.total, "available_bytes": report.ram.available}
            result["notes"] = list(report.notes)
            return result
        except Exception as exc:  # detection is advisory; the endpoints matter more
            result["notes"].append(f"GPU detection failed: {type(exc).__name__}")
    else:
        result["notes"].append("GPU detection is not available in this build")
    import psutil

    vm = await asyncio.to_thread(psutil.virtual_memory)
    result["ram"] = {"total_bytes": int(vm.total), "available_bytes": int(vm.available)}
    return result


def _gib(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def format_status(status: EndpointStatus, name: str | None = None) -> list[str]:
    """The doctor's lines for one endpoint (``name``: the user's name for a hand-added one)."""
    head = f"{status.base_url:<28} {status.display_kind:<12} {STATE_MARK[status.state]:<14}"
    if status.latency_s is not None:
        head += f" {status.latency_s * 1000:6.0f} ms"
    lines = [head.rstrip()]
    if name:
        lines.append(f"    {name} (your endpoint)")
    lines.append(f"    {status.diagnosis}")
    for model in status.loaded_models:
        bits = []
        if model.context_length:
            bits.append(f"ctx {model.context_length}")
        if model.size_bytes:
            bits.append(f"{_gib(model.size_bytes)}")
        if model.gpu_fraction is not None:
            bits.append(f"{model.gpu_fraction:.0%} GPU")
        lines.append(f"    - {model.name}" + (f" ({', '.join(bits)})" if bits else ""))
    if status.kv_cache_usage is not None:
        lines.append(f"    KV cache in use: {status.kv_cache_usage:.0%}")
    if status.source not in ("default", "settings"):
        lines.append(f"    (from {status.source})")
    return lines


async def doctor_command(args: argparse.Namespace, out: TextIO) -> int:
    members, hardware, problems = await asyncio.gather(
        registry_endpoints(extra=args.endpoint, include_defaults=not args.no_defaults,
                           scan_processes=not args.no_scan),
        hardware_report(), profile_problems())
    statuses = [m.status for m in members if m.status is not None]
    if args.json:
        rows = [{**m.status.to_dict(), "name": m.name, "origin": m.origin} for m in members if m.status]
        out.write(json.dumps({"endpoints": rows, "hardware": hardware,
                              "profile_errors": problems}, indent=2) + "\n")
        return 0
    servers = [s for s in statuses if s.is_inference_server and s.state is not EndpointState.DOWN]
    out.write("Local inference servers\n")
    for member in members:
        assert member.status is not None
        for line in format_status(member.status, member.name if member.origin == ORIGIN_SETTINGS else None):
            out.write(line + "\n")
    if not servers:
        out.write("\nNo local inference server is running. Start one (`ollama serve`, LM Studio's server, "
                  "`vllm serve MODEL` or `llama-server -m MODEL.gguf`), or point Victor GUI at it with "
                  "OLLAMA_HOST / VICTOR_LM_STUDIO_HOST / VICTOR_VLLM_HOST / VICTOR_LLAMACPP_HOST.\n")
    else:
        kinds = sorted({s.display_kind for s in servers})
        out.write(f"\n{len(servers)} server(s) answering: {', '.join(kinds)}.\n")
    out.write("\nHardware\n")
    if not hardware["gpus"]:
        detected = not any("not available" in n for n in hardware["notes"])
        out.write("    no GPU found\n" if detected else "    GPUs: detection not available in this build\n")
    for gpu in hardware["gpus"]:
        free = _gib(gpu["free_bytes"]) + " free" if gpu["free_bytes"] is not None else "free unknown"
        out.write(f"    GPU {gpu['vendor']} {gpu['name']}: {_gib(gpu['total_bytes'])} total, {free}\n")
    if hardware["ram"]:
        ram = hardware["ram"]
        out.write(f"    RAM: {_gib(ram['total_bytes'])} total, {_gib(ram['available_bytes'])} available\n")
    _write_problems(out, problems)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one of these commands without the rest of the app (``python -m victor_gui.cli.servers``)."""
    parser = argparse.ArgumentParser(prog="victor-gui")
    add_manager_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
