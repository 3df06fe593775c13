"""Screenshots of attachments in the window (issue 13), light and dark, under a real X server:

    python -m bench.screenshots_attachments --out shots

It saves, for each theme:

* ``attach-chips-<theme>.png``: chips above the input (image thumbnails, sizes, pixel sizes,
  estimated tokens, a document, a file that cannot be read as an error chip);
* ``attach-sources-<theme>.png``: a reopened chat: the user's message with its attachment chips,
  the reply with its "Sources" line and the quoted passages expanded;
* ``attach-no-images-<theme>.png``: a text-only model refusing an image before sending, with a
  button for the model on the same server that takes images.

The chat runs against the vLLM simulator; the files are made here. Only for people and
the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from bench.xvfb import run_shots
from tests.servers.base import free_port
from tests.servers.vllm import make_server

TEXT_ONLY = "qwen3-8b-instruct-q4_k_m"
VISION = "llama-3.2-11b-vision-instruct"

GUIDE = """# Installing the garden sensor

## Batteries
Use two AA lithium cells. Alkaline cells leak in frost.

## Pairing
Hold the reset button for ten seconds until the light blinks twice, then open the app.
""" + "\n".join(f"Step {i}: check the seal on panel {i}." for i in range(1, 120))

PASSAGE_1 = "Hold the reset button for ten seconds until the light blinks twice, then open the app."
PASSAGE_2 = "Use two AA lithium cells. Alkaline cells leak in frost."


def _files(folder: Path) -> dict[str, Path]:
    from PIL import Image, ImageDraw

    sunset = Image.new("RGB", (1600, 1000))
    draw = ImageDraw.Draw(sunset)
    for y in range(1000):
        draw.line([(0, y), (1600, y)], fill=(255 - y // 6, 120 + y // 12, 60 + y // 5))
    draw.ellipse((600, 500, 1000, 900), fill=(255, 210, 90))
    chart = Image.new("RGB", (1200, 800), "white")
    cdraw = ImageDraw.Draw(chart)
    for i, h in enumerate((300, 520, 410, 650, 580)):
        cdraw.rectangle((120 + i * 200, 760 - h, 240 + i * 200, 760), fill=(60, 110, 200))
    paths = {"sunset": folder / "sunset-at-the-lake.jpg", "chart": folder / "sales-q3.png",
             "guide": folder / "garden-sensor-guide.md", "csv": folder / "readings.csv",
             "bad": folder / "old-notes.doc"}
    sunset.save(paths["sunset"], "JPEG", quality=90)
    chart.save(paths["chart"], "PNG")
    paths["guide"].write_text(GUIDE, encoding="utf-8")
    paths["csv"].write_text("day,temp,moisture\n" + "\n".join(f"{d},{12 + d % 7},{40 + d % 13}"
                                                             for d in range(1, 400)), encoding="utf-8")
    paths["bad"].write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1536))  # Word 97-2003
    return paths


async def _wait(predicate, limit_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not predicate() and loop.time() < deadline:  # noqa: ASYNC110 (polling widgets)
        await asyncio.sleep(0.02)


async def shoot(out: Path) -> list[Path]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.theme import apply_theme

    home = tempfile.TemporaryDirectory()
    os.environ["XDG_CONFIG_HOME"] = str(Path(home.name) / "config")
    os.environ["XDG_DATA_HOME"] = str(Path(home.name) / "data")
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_LLAMACPP_HOST"):
        os.environ[var] = f"127.0.0.1:{free_port()}"
    files = _files(Path(home.name))
    saved: list[Path] = []
    client = make_client(LOCAL_TIMEOUTS)
    store, _notice = await open_store(Path(home.name) / "chats")

    def grab(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    def grab_part(top_widget, bottom_widget, name: str) -> None:  # type: ignore[no-untyped-def]
        """The chat pane from ``top_widget``'s top to ``bottom_widget``'s bottom (full width):
        the small pictures the README shows."""
        from PySide6.QtCore import QPoint, QRect

        pane = window.chat
        top = top_widget.mapTo(pane, QPoint(0, 0)).y()
        bottom = bottom_widget.mapTo(pane, QPoint(0, bottom_widget.height())).y()
        path = out / name
        pane.grab(QRect(0, max(0, top - 6), pane.width(), bottom - top + 12)).save(str(path))
        saved.append(path)

    with make_server(models=[TEXT_ONLY, VISION]) as sim:
        sim.model = VISION
        # vLLM: which of its models takes images comes from the capability table (a llama-server
        # answers for the whole server, so one server cannot show both cases).
        os.environ["VICTOR_VLLM_HOST"] = f"127.0.0.1:{sim.port}"
        pool = ProviderPool(client)
        window = MainWindow(pool, store)
        window.resize(1100, 760)
        window.show()
        chat = window.chat
        await chat.start()
        await _wait(lambda: chat.model_combo.count() == 2)
        try:
            for mode in ("light", "dark"):
                apply_theme(mode)
                # 1. Chips above the input.
                chat.new_chat()
                chat.model_combo.setEditText(VISION)
                chat.attach_paths([files[k] for k in ("sunset", "chart", "guide", "csv", "bad")])
                await _wait(lambda: not chat.draft.busy and len(chat.draft.items()) == 5)
                chat.input.setPlainText("Which step of the guide matches the chart's worst month?")
                await asyncio.sleep(0.4)
                grab(window, f"attach-chips-{mode}.png")
                grab_part(chat.picker, chat.input, f"attach-chips-{mode}-small.png")

                # 2. A reopened chat with attachments and a reply with sources.
                items = chat.draft.items()
                refs = [i.ref for i in items if i.ref is not None]
                conv = await store.create_conversation("Pairing the garden sensor")
                await store.add_message(conv.id, "user", "How do I pair the sensor, and which batteries?",
                                        attachments=[refs[2], refs[0]])
                chat.draft.clear()  # after the message holds the files: the rest go back
                chat.input.clear()
                sources = [{"name": files["guide"].name, "sha256": refs[2].sha256, "locator": "§ Pairing",
                            "text": PASSAGE_1, "score": 0.83},
                           {"name": files["guide"].name, "sha256": refs[2].sha256, "locator": "§ Batteries",
                            "text": PASSAGE_2, "score": 0.71}]
                await store.add_message(
                    conv.id, "assistant",
                    "Hold the **reset** button for ten seconds until the light blinks twice, then open "
                    "the app to pair it. Use two AA **lithium** cells: alkaline ones leak in frost.",
                    provider="vllm", model=VISION, meta={"sources": sources})
                await window.conversations.refresh()
                await chat.open_conversation(conv.id)
                chat.model_combo.setEditText(VISION)  # the model that answered, as when it did
                await asyncio.sleep(0.5)
                reply = [v for v in chat.transcript.messages if v.role == "assistant"][-1]
                reply.sources.toggle_passages()
                await asyncio.sleep(0.4)
                grab(window, f"attach-sources-{mode}.png")
                user_view = [v for v in chat.transcript.messages if v.role == "user"][-1]
                grab_part(user_view, reply, f"attach-sources-{mode}-small.png")
                await store.delete_conversation(conv.id)  # the next theme makes its own
                await window.conversations.refresh()

                # 3. A text-only model refuses an image before sending.
                chat.new_chat()
                chat.model_combo.setEditText(TEXT_ONLY)
                chat.attach_paths([files["sunset"]])
                await _wait(lambda: len(chat.draft.refs()) == 1)
                chat.input.setPlainText("What time of day is it in this photo?")
                chat.send()
                await _wait(lambda: chat.no_images.isVisible())
                await asyncio.sleep(0.4)
                grab(window, f"attach-no-images-{mode}.png")
                grab_part(chat.picker, chat.input, f"attach-no-images-{mode}-small.png")
                chat.no_images.hide()
                chat.draft.clear()
                chat.input.clear()
        finally:
            await chat.aclose()
            await window.conversations.aclose()
            await window.compare.aclose()
            await pool.close()
            window.close()
    await store.close()
    await client.aclose()
    home.cleanup()
    return saved


def main() -> int:
    return run_shots("bench.screenshots_attachments", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
