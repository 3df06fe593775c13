"""user:pass typed into an endpoint's URL: settings.yaml gets the URL without them, the keyring
gets them (as a Basic Authorization secret header), and the server still receives them.

Before: the URL was saved as typed, so the password sat in settings.yaml (and from there in log
lines, error texts and exports)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.config.memory_keyring import MemoryKeyring, use_backend
from victor_gui.config.secrets import SERVICE, KeyringStore
from victor_gui.config.settings import load_settings
from victor_gui.services.endpoint_providers import endpoint_access, provider_for_endpoint
from victor_gui.services.settings_service import SettingsService
from victor_gui.ui.endpoint_editor import EndpointEditor

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")

PASSWORD = "pw-UrlCanary-4711"


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = json.dumps({"object": "list", "data": [{"id": "m1", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[str | None]]]:
    seen: list[str | None] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()


async def test_password_typed_in_the_url_goes_to_the_keyring_and_still_reaches_the_server(
        qtbot, clean_env, tmp_path: Path, recorder: tuple[int, list[str | None]]) -> None:
    port, seen = recorder
    settings_file = tmp_path / "cfg" / "settings.yaml"
    backend = MemoryKeyring()
    with use_backend(backend):
        service = SettingsService(settings_file)
        await service.load()
        editor = EndpointEditor(None, settings=service, keyring_store=KeyringStore())
        qtbot.addWidget(editor)
        editor.show()
        editor.name_edit.setText("Box")
        editor.kind_combo.setCurrentIndex(editor.kind_combo.findText("OpenAI-compatible"))
        editor.url_edit.setText(f"http://alice:{PASSWORD}@127.0.0.1:{port}/v1")
        editor.submit()
        assert editor.task is not None
        await editor.task
        assert not editor.isVisible(), editor.error_label.text()

        text = settings_file.read_text(encoding="utf-8")
        assert PASSWORD not in text and "alice" not in text
        [saved] = (await load_settings(settings_file)).settings.endpoints
        assert saved.url == f"http://127.0.0.1:{port}/v1"
        assert saved.secret_headers == ["Authorization"]
        expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
        assert backend.entries[(SERVICE, "endpoint:Box:header:authorization")] == expected

        access = await asyncio.to_thread(endpoint_access, saved, KeyringStore().get_key)
        provider, client = provider_for_endpoint(saved, access=access, max_retries=0)
        try:
            models = await provider.list_models()
        finally:
            await provider.close()
            await client.aclose()
        assert [m.id for m in models] == ["m1"]
        assert seen and all(value == expected for value in seen)
        service.close()
