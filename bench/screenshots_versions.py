"""Screenshots of versions and branches (issue 14), in light and dark, under a real X server:

* ``versions-MODE.png``: a chat whose reply was regenerated twice and whose question was edited
  once, opened on the second reply: the "‹ 2/3 ›" switcher on the reply and "‹ 2/2 ›" on the
  edited question, Branch on each message, the follow-up on that branch below;
* ``versions-editing-MODE.png``: the same chat while a message is being edited (Cancel beside
  Send, the "Editing: …" status line).

    python -m bench.screenshots_versions --out /tmp/shots-versions

Without ``DISPLAY`` it re-runs itself under ``xvfb-run -a``. The chat is written straight into a
real store (no server needed). Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bench.xvfb import close_window, run_shots

MODEL = "qwen3-8b-instruct-q4_k_m"
QUESTION = "Suggest a name for a tool that keeps every version of a chat."
REPLIES = (
    "How about **Palimpsest**: a page written over, where the older text still shows through.",
    "Try **Branchwork**. It says what it does: every answer you regenerate becomes a branch you "
    "can go back to.",
    "**Versionary**, a little playful, easy to remember.",
)


async def _fill(store) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A chat with an edited question and three versions of a reply; returns (chat, reply 2)."""
    from victor_gui.providers.types import Timings, Usage

    conv = await store.create_conversation("Naming the versions feature")
    old = await store.add_message(conv.id, "user", "Name for a versions tool?")
    await store.add_message(conv.id, "assistant", "Versions.", provider="llamacpp", model=MODEL)
    await store.fork(conv.id, None)  # the question, edited: a second version of it
    question = await store.add_message(conv.id, "user", QUESTION)
    ids = []
    for n, text in enumerate(REPLIES):
        if n:
            await store.fork(conv.id, question)  # Regenerate: a new version beside the last
        ids.append(await store.add_message(
            conv.id, "assistant", text, provider="llamacpp", model=MODEL,
            usage=Usage(prompt_tokens=31, completion_tokens=24 + 7 * n),
            timings=Timings(ttft_ms=140 + 20 * n, tokens_per_second=61.5 - n)))
    await store.choose_version(ids[1])
    await store.add_message(conv.id, "user", "Branchwork it is. A one-line description?")
    await store.add_message(conv.id, "assistant", "Branchwork keeps every answer you try, so going "
                            "back is one click.", provider="llamacpp", model=MODEL,
                            usage=Usage(prompt_tokens=80, completion_tokens=17),
                            timings=Timings(ttft_ms=120, tokens_per_second=60.2))
    await store.choose_version(ids[1])
    assert old
    return conv.id, ids[1]


async def shoot(out: Path) -> list[Path]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.theme import apply_theme

    home = tempfile.TemporaryDirectory()
    os.environ["XDG_CONFIG_HOME"] = str(Path(home.name) / "config")  # no user settings read
    os.environ["XDG_DATA_HOME"] = str(Path(home.name) / "data")
    saved: list[Path] = []
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    store, _notice = await open_store(Path(home.name) / "chats")
    conv_id, _reply = await _fill(store)
    window = MainWindow(pool, store)
    window.resize(1100, 720)
    window.show()
    chat = window.chat

    def grab(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    try:
        window.conversations.refresh()
        for mode in ("light", "dark"):
            apply_theme(mode)
            await chat.open_conversation(conv_id)
            await asyncio.sleep(0.8)
            grab(window, f"versions-{mode}.png")
            question = chat.transcript.messages[0]
            question.edit_button.click()
            await asyncio.sleep(0.3)
            grab(window, f"versions-editing-{mode}.png")
            chat.cancel_edit()
    finally:
        await close_window(window, pool, client, store)
        home.cleanup()
    return saved


if __name__ == "__main__":
    raise SystemExit(run_shots("bench.screenshots_versions", __doc__, shoot))
