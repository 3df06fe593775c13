"""Schema v7 (document_vectors) on a real SQLite file: the tables are there after migration from
an older file, a set is replaced whole when the chunking changes, and deleting a document drops
its chunks under every model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from victor_gui.storage.opening import open_store
from victor_gui.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate, user_version


def test_migration_adds_the_tables_to_an_older_file(tmp_path: Path) -> None:
    names = [m.name for m in MIGRATIONS]
    step = names.index("document_vectors")
    conn = sqlite3.connect(tmp_path / "c.sqlite3", isolation_level=None)
    migrate(conn, None, target=step)
    assert user_version(conn) == step
    migrate(conn, None)
    assert user_version(conn) == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"document_embeddings", "document_chunks"} <= tables
    conn.close()


async def test_sets_are_whole_replaced_and_deleted(tmp_path: Path) -> None:
    store, _ = await open_store(tmp_path)
    v = store.vectors
    try:
        await v.put("a" * 64, "ollama/m", "chars:800/100", [(0, "page 1", "one", [1.0, 0.0]),
                                                           (1, "page 2", "two", [0.0, 1.0])])
        await v.put("a" * 64, "llamacpp/t", "chars:800/100", [(0, "", "one", [0.5, 0.5, 0.5])])
        assert await v.is_embedded("a" * 64, "ollama/m", "chars:800/100")
        assert not await v.is_embedded("a" * 64, "ollama/m", "chars:400/50")  # cut differently
        await v.put("a" * 64, "ollama/m", "chars:400/50", [(0, "page 1", "o", [1.0, 1.0])])
        rows = await v.load(["a" * 64], "ollama/m")
        assert [(r.index, r.text) for r in rows] == [(0, "o")]
        assert len(await v.load(["a" * 64, "a" * 64], "llamacpp/t")) == 1  # asked twice, given once
        assert await v.delete_document("a" * 64) == 2
        assert await v.load(["a" * 64], "llamacpp/t") == []
    finally:
        await store.close()
