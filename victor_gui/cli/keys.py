"""``victor-gui keys``: save, list and delete provider API keys in the OS keyring (headless).

    victor-gui keys set PROVIDER        # the key is read from standard input, never from argv
    victor-gui keys list [--json]       # which providers have a saved key (never the key)
    victor-gui keys delete PROVIDER

The same store the window's Settings → API keys writes (:class:`~victor_gui.config.secrets.KeyringStore`:
the Windows Credential Manager, the macOS Keychain, the Secret Service): a key saved here is the
one the window and ``chat`` use, and it never reaches settings.yaml, the log or the output. The key
is not taken as an argument because arguments are visible to every user's process list.
Exit codes: 0 done; 1 no keyring can hold the key, or nothing to delete; 2 usage (an unknown
provider, an empty key).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

EXIT_FAILED = 1
EXIT_USAGE = 2


def add_keys_command(subparsers: Any) -> None:
    """Register ``keys set|list|delete`` on the ``victor-gui`` sub-command parser."""
    keys = subparsers.add_parser("keys", help="save, list or delete API keys in the system keyring",
                                 description=__doc__.splitlines()[0].split(": ", 1)[1])
    actions = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    put = actions.add_parser("set", help="save a provider's key (read from standard input)")
    put.add_argument("provider", metavar="PROVIDER", help="a provider by any name (openai, anthropic...)")
    listing = actions.add_parser("list", help="the providers that have a key in the keyring")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    delete = actions.add_parser("delete", help="remove a provider's key from the keyring")
    delete.add_argument("provider", metavar="PROVIDER")
    keys.set_defaults(handler=run_keys)


def run_keys(args: argparse.Namespace, stdin: TextIO | None = None, out: TextIO | None = None,
             err: TextIO | None = None) -> int:
    """Entry point of ``victor-gui keys``; returns the exit code. Blocking (the keyring) by
    design: a headless command with no event loop."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    from victor_gui.config.secrets import usable_keyring
    from victor_gui.errors import StorageError
    from victor_gui.providers.catalog import SPECS, find_spec

    store, note = usable_keyring()
    if store is None:
        err.write(f"{note}\n")
        return EXIT_FAILED
    if args.keys_action == "list":
        names = [spec.name for spec in SPECS if not spec.is_local and store.has_key(spec.name)]
        out.write(json.dumps({"keys": names}) + "\n" if args.json else
                  "".join(f"{name}\n" for name in names) or "No keys saved.\n")
        return 0
    spec = find_spec(args.provider)
    if spec is None or spec.is_local:
        err.write(f"{args.provider!r} is not a provider that takes a key; "
                  f"one of: {', '.join(s.name for s in SPECS if not s.is_local)}\n")
        return EXIT_USAGE
    if args.keys_action == "delete":
        if not store.delete_key(spec.name):
            err.write(f"No key was saved for {spec.name}.\n")
            return EXIT_FAILED
        out.write(f"Deleted the key for {spec.name}.\n")
        return 0
    key = stdin.readline().strip()
    if not key:
        err.write("No key on standard input (pipe it in, or type it and press Enter).\n")
        return EXIT_USAGE
    try:
        store.set_key(spec.name, key)
    except StorageError as exc:  # its message never holds the key
        err.write(f"{exc.message}\n")
        return EXIT_FAILED
    out.write(f"Saved the key for {spec.name} in the system keyring.\n")
    return 0


__all__ = ["add_keys_command", "run_keys"]
