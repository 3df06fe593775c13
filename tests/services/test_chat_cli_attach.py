"""``victor-gui chat --attach FILE`` as a real subprocess against simulators on 127.0.0.1: an
image and a document reach the model as in the window, ``--json`` lists them, and a file that
cannot be attached exits 8 with one sentence naming it (no chat is left behind)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.servers import ollama as ollama_sim
from tests.servers.base import Script, SimServer
from tests.services.chat_cli_support import Home
from victor_gui.services.exit_codes import EXIT_ATTACHMENT

FACT = "The boat is moored at pier 7."


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "harbour.txt"
    path.write_text(f"Harbour log.\n{FACT}\n", encoding="utf-8")
    return path


def test_document_goes_before_the_prompt_and_json_lists_it(home: Home, sim: SimServer, notes: Path) -> None:
    sim.script(Script(text="Pier 7."))
    result = home.run("chat", "--json", "--endpoint", sim.url, "--model", "sim-model",
                      "--attach", str(notes), "Where is the boat?")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["text"] == "Pier 7."
    [entry] = payload["attachments"]
    assert (entry["name"], entry["kind"], entry["media_type"]) == ("harbour.txt", "document", "text/plain")
    assert payload["sources"] == []  # the baseline puts the whole text in: nothing retrieved
    sent = sim.chat_requests()[-1].body["messages"][-1]["content"]
    assert FACT in sent and sent.index(FACT) < sent.index("Where is the boat?")
    ((_, messages),) = home.stored()
    assert messages[0].content == "Where is the boat?" and messages[0].attachments[0].name == "harbour.txt"
    [blob] = (home.db.parent / "attachments").glob("??/*")  # the copy in the data folder
    assert blob.name == entry["sha256"] and blob.read_bytes() == notes.read_bytes()


def test_image_and_document_reach_an_ollama_vision_model(home: Home, tmp_path: Path, notes: Path) -> None:
    picture = tmp_path / "boat.jpg"
    Image.new("RGB", (64, 48), (10, 40, 200)).save(picture)
    with ollama_sim.make_server() as server:
        server.script(Script(text="A blue boat at pier 7."))
        result = home.run("chat", "--provider", "ollama", "--model", "sim-model", "--attach", str(picture),
                          "--attach", str(notes), "What and where?", env={"OLLAMA_HOST": server.url})
        body = server.chat_requests()[-1].body
    assert result.returncode == 0, result.stderr
    assert result.stdout == "A blue boat at pier 7.\n"
    user = body["messages"][-1]
    [image] = user["images"]
    assert base64.b64decode(image)[:4] in (b"\xff\xd8\xff\xe0", b"\x89PNG")  # bare base64 as Ollama takes it
    assert FACT in user["content"] and user["content"].endswith("What and where?")
    ((_, messages),) = home.stored()
    assert [a.name for a in messages[0].attachments] == ["boat.jpg", "harbour.txt"]


def test_a_missing_file_exits_8_with_one_sentence_and_stores_nothing(home: Home, sim: SimServer,
                                                                    tmp_path: Path) -> None:
    result = home.run("chat", "--endpoint", sim.url, "--model", "sim-model",
                      "--attach", str(tmp_path / "gone.pdf"), "summarise")
    assert result.returncode == EXIT_ATTACHMENT
    assert result.stderr.strip() == "gone.pdf cannot be attached: there is no such file."
    assert result.stdout == "" and sim.chat_requests() == [] and home.stored() == []


def test_a_non_utf8_file_is_read_and_said_so(home: Home, sim: SimServer, tmp_path: Path) -> None:
    latin = tmp_path / "old-notes.txt"
    latin.write_bytes("Caf\xe9 menu, pri\xe8re de payer".encode("latin-1"))
    result = home.run("chat", "--json", "--endpoint", sim.url, "--model", "sim-model",
                      "--attach", str(latin), "summarise")
    assert result.returncode == 0, result.stderr
    assert "Café menu" in json.dumps(sim.chat_requests()[-1].body, ensure_ascii=False)
    warnings = json.loads(result.stdout).get("warnings", [])
    assert any("old-notes.txt" in w and "UTF-8" in w for w in warnings), warnings


def test_a_file_that_does_not_convert_exits_8_naming_it(home: Home, sim: SimServer, tmp_path: Path) -> None:
    latin = tmp_path / "old-notes.docx"
    latin.write_bytes(b"PK\x03\x04" + b"\x00" * 40)  # a truncated Word file
    result = home.run("chat", "--json", "--endpoint", sim.url, "--model", "sim-model",
                      "--attach", str(latin), "summarise")
    assert result.returncode == EXIT_ATTACHMENT, result.stdout
    assert "old-notes.docx" in result.stderr.splitlines()[0]
    payload = json.loads(result.stdout)
    error = payload["error"]
    assert error["exit_code"] == EXIT_ATTACHMENT and "old-notes.docx" in error["sentence"]
    assert sim.chat_requests() == [] and home.stored() == []  # refused before a chat was kept
    assert not list((home.db.parent / "attachments").glob("??/*"))  # nor its blob


def test_an_image_to_a_model_without_vision_exits_8(home: Home, sim: SimServer, tmp_path: Path) -> None:
    picture = tmp_path / "chart.png"
    Image.new("RGB", (32, 32), (0, 0, 0)).save(picture)
    result = home.run("chat", "--endpoint", sim.url, "--model", "sim-model", "--attach", str(picture),
                      "what?")
    assert result.returncode == EXIT_ATTACHMENT
    assert "sim-model on " in result.stderr and "does not take images" in result.stderr
    assert sim.chat_requests() == [] and home.stored() == []
    assert not list((home.db.parent / "attachments").glob("??/*"))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_and_a_huge_log_are_refused_at_once(home: Home, sim: SimServer, tmp_path: Path) -> None:
    huge = tmp_path / "huge.log"
    with huge.open("wb") as f:
        f.truncate(200 * 1024 * 1024)  # sparse: 200 MB on paper, nothing on disk
    for path, words in ((Path("/dev/zero"), "not a regular file"), (huge, "huge.log")):
        result = home.run("chat", "--endpoint", sim.url, "--model", "sim-model", "--attach", str(path), "hi")
        assert result.returncode == EXIT_ATTACHMENT, result.stderr
        assert words in result.stderr.splitlines()[0]
    assert sim.chat_requests() == [] and home.stored() == []
    assert not list((home.db.parent / "attachments").glob("??/*"))
