"""Schema v7 (document_vectors) on a real SQLite file: the tables are there after migration from
an older file, a set is replaced whole when the chunking changes, FTS5 finds chunks by their
words (quoting whatever the person typed), and deleting a document drops its chunks and their
index entries under every model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from victor_gui.storage.opening import open_store
from victor_gui.storage.schema import MIGRATIONS, SCHEMA_VERSION, migrate, user_version
from victor_gui.storage.vectors import pack


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
        await v.put("a" * 64, "ollama/m", "chars:800/100", [("page 1", "one", [1.0, 0.0]),
                                                           ("page 2", "two", [0.0, 1.0])])
        await v.put("a" * 64, "llamacpp/t", "chars:800/100", [("", "one", [0.5, 0.5, 0.5])])
        assert await v.is_embedded("a" * 64, "ollama/m", "chars:800/100")
        assert not await v.is_embedded("a" * 64, "ollama/m", "chars:400/50")  # cut differently
        await v.put("a" * 64, "ollama/m", "chars:400/50", [("page 1", "o", [1.0, 1.0])])
        [m] = await v.matrices(["a" * 64], "ollama/m")
        assert (m.rows, m.dim, m.data) == (1, 2, pack([0.5 ** 0.5, 0.5 ** 0.5]))  # stored at length 1
        assert [c.text for c in await v.chunks([("a" * 64, 0), ("a" * 64, 1)], "ollama/m")] == ["o"]
        assert len(await v.matrices(["a" * 64, "a" * 64], "llamacpp/t")) == 1  # asked twice, given once
        with pytest.raises(ValueError, match="one width"):
            await v.put("c" * 64, "ollama/m", "c", [("", "x", [1.0]), ("", "y", [1.0, 2.0])])
        await v.put("b" * 64, "ollama/m", "c", [("", 'valve "seven" OR opens* at NEAR(quartz)', [1.0]),
                                                 ("", "nothing here", [1.0])])
        hits = await v.lexical(['"seven"', "quartz", "near", "*"], ["a" * 64, "b" * 64], "ollama/m", 5)
        assert [(sha[0], idx) for sha, idx, _ in hits] == [("b", 0)] and hits[0][2] > 0
        assert await v.lexical(["seven"], ["a" * 64], "ollama/m", 5) == []  # other documents only
        picked = await v.chunks([("b" * 64, 1), ("b" * 64, 0)], "ollama/m")
        assert [c.index for c in picked] == [1, 0] and picked[0].text == "nothing here"
        assert await v.delete_document("a" * 64) == 2
        assert await v.delete_document("b" * 64) == 1
        assert await v.matrices(["a" * 64], "llamacpp/t") == []
        left = "SELECT count(*) FROM document_chunks_fts WHERE document_chunks_fts MATCH 'nothing'"
        assert await store._db.read(lambda c: c.execute(left).fetchone()[0]) == 0
    finally:
        await store.close()
