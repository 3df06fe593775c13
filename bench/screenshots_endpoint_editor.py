"""Screenshots of the endpoint editor, filled, in light and dark, under Xvfb.

    python -m bench.screenshots_endpoint_editor --out /work/shots

Saves ``endpoint-editor-light.png`` and ``endpoint-editor-dark.png``: a gateway endpoint with a
token saved in the (in-memory) keyring, a plain and a secret header, TLS with a CA file, and the
clear-text warning shown because the URL is plain http to a public host name. Nothing is
written outside ``--out`` (settings.yaml goes there; the keyring is in memory).
Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bench.xvfb import run_shots


async def shoot(out: Path) -> list[Path]:
    import keyring

    from tests.config.memory_keyring import MemoryKeyring
    from victor_gui.config.secrets import KeyringStore, endpoint_key_name
    from victor_gui.services.settings_service import SettingsService
    from victor_gui.ui.endpoint_editor import EndpointEditor
    from victor_gui.ui.theme import apply_theme

    keyring.set_keyring(MemoryKeyring())
    store = KeyringStore()
    ca = out / "team-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    service = SettingsService(out / "settings.yaml")
    await service.load()

    def change(_current: object) -> dict[str, object]:
        return {"endpoints": [{
            "name": "Team gateway", "kind": "openai-compatible", "url": "http://llm.example.com:4000/v1",
            "group": "team", "headers": {"X-Team": "inference"}, "secret_headers": ["X-Gateway-Secret"],
            "ca_bundle": str(ca), "connect_timeout_s": 5, "read_timeout_s": 300,
            "allow_insecure_key": True}]}

    await service.update(change)
    store.set_key(endpoint_key_name("Team gateway"), "sk-team-0123456789")
    saved: list[Path] = []
    for mode in ("light", "dark"):
        apply_theme(mode)
        editor = EndpointEditor(None, settings=service, keyring_store=store,
                                original=service.settings.endpoints[0])
        editor.show()
        assert editor.loading is not None
        await editor.loading
        editor.resize(editor.sizeHint().width() + 40, editor.sizeHint().height())
        await asyncio.sleep(0.3)
        path = out / f"endpoint-editor-{mode}.png"
        editor.grab().save(str(path))
        saved.append(path)
        editor.close()
    return saved


def main() -> int:
    return run_shots("bench.screenshots_endpoint_editor", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
