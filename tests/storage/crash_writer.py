"""Child process for test_crash_kill: streams replies into a real store until it is killed.

Usage: ``python -m tests.storage.crash_writer DB_PATH ROUND``. Writes through the public store
API only. After each durable step it prints one line (flushed at once), so the parent knows
what must survive a SIGKILL:

* ``USER <id> <text>``: a complete user message was committed.
* ``BEGUN <id>``: an assistant row in status streaming exists.
* ``COMMITTED <id> <n>``: the first ``n`` characters of that reply are committed.
* ``COMPLETE <id> <n>``: the reply was finished with ``n`` characters.

Reply text is deterministic: delta ``k`` of message ``id`` is ``delta_text(id, k)``.
"""

from __future__ import annotations

import asyncio
import sys

from victor_gui.storage import open_store

DELTAS = 150  # deltas per reply


def delta_text(message_id: int, k: int) -> str:
    """The k-th delta of reply ``message_id`` (the parent rebuilds expected text from this)."""
    return f"<{message_id}:{k}>"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(db_path: str, round_no: int) -> None:
    store, _ = await open_store(db_path)
    store.flush_interval = 0.01  # flush often so kills land between, during and after flushes
    convs = await store.list_conversations(limit=1)
    conv = convs[0] if convs else await store.create_conversation("crash test")
    n = 0
    while True:
        uid = await store.add_message(conv.id, "user", f"question {round_no}-{n}")
        say(f"USER {uid} question {round_no}-{n}")
        mid = await store.begin_assistant_message(conv.id, provider="sim", model="crash")
        say(f"BEGUN {mid}")
        length = 0
        for k in range(DELTAS):
            delta = delta_text(mid, k)
            await store.append_partial(mid, delta)
            length += len(delta)
            if k % 10 == 9:
                await store.flush(mid)
                say(f"COMMITTED {mid} {length}")
            await asyncio.sleep(0.0005)
        await store.finish_message(mid, "complete")
        say(f"COMPLETE {mid} {length}")
        n += 1


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
