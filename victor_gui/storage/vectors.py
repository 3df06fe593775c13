"""Document chunks and their embedding vectors, in the conversation database (schema v7 tables
``document_embeddings`` and ``document_chunks``).

Keyed by the document's content hash and the embedding model's id (``provider/model``): the
same file is embedded once per model, whatever conversation attached it, and another model
embeds it again beside the first. A document's set of chunks is written in one transaction with
its ``document_embeddings`` row, so a set is either complete or absent (an app killed while
embedding leaves nothing half-written to be trusted). Vectors are float32 little-endian BLOBs.

Everything runs on the store's threads (:class:`~victor_gui.storage.db.Database`): the event
loop never waits on SQLite.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from victor_gui.storage.db import Database


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored: where it is in its document, its text, and its vector's bytes."""

    sha256: str
    index: int
    locator: str
    text: str
    vector: bytes  # float32, little-endian


def pack(vector: Sequence[float]) -> bytes:
    """``vector`` as float32 little-endian bytes."""
    data = array("f", vector)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tobytes()


def unpack(blob: bytes) -> list[float]:
    """The numbers of a :func:`pack` BLOB."""
    data = array("f")
    data.frombytes(blob)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tolist()


def _embedded(conn: sqlite3.Connection, sha256: str, model: str, chunking: str) -> bool:
    row = conn.execute("SELECT chunking FROM document_embeddings WHERE sha256 = ? AND model = ?",
                       (sha256, model)).fetchone()
    return row is not None and row[0] == chunking


def _put(conn: sqlite3.Connection, sha256: str, model: str, chunking: str,
         chunks: Sequence[tuple[int, str, str, bytes]], dim: int) -> None:
    # A set cut another way (new chunk size) is replaced whole; the cascade drops its chunks.
    conn.execute("DELETE FROM document_embeddings WHERE sha256 = ? AND model = ?", (sha256, model))
    conn.execute("INSERT INTO document_embeddings (sha256, model, chunking, chunks, dim, created) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (sha256, model, chunking, len(chunks), dim, time.time()))
    conn.executemany("INSERT INTO document_chunks (sha256, model, idx, locator, text, vector) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     [(sha256, model, idx, locator, text, blob) for idx, locator, text, blob in chunks])


def _load(conn: sqlite3.Connection, sha256s: Sequence[str], model: str) -> list[StoredChunk]:
    out: list[StoredChunk] = []
    for sha in dict.fromkeys(sha256s):
        rows = conn.execute("SELECT idx, locator, text, vector FROM document_chunks "
                            "WHERE sha256 = ? AND model = ? ORDER BY idx", (sha, model))
        out.extend(StoredChunk(sha, idx, locator, text, bytes(blob)) for idx, locator, text, blob in rows)
    return out


class VectorStore:
    """Async access to the stored chunks and vectors of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def is_embedded(self, sha256: str, model: str, chunking: str) -> bool:
        """Whether a complete set of ``model``'s vectors cut by ``chunking`` is stored."""
        return await self._db.read(lambda conn: _embedded(conn, sha256, model, chunking))

    async def put(self, sha256: str, model: str, chunking: str,
                  chunks: Sequence[tuple[int, str, str, Sequence[float]]]) -> None:
        """Store a document's whole set: ``(index, locator, text, vector)`` per chunk."""
        packed = [(idx, locator, text, pack(vec)) for idx, locator, text, vec in chunks]
        dim = len(chunks[0][3]) if chunks else 0
        await self._db.write(lambda conn: _put(conn, sha256, model, chunking, packed, dim))

    async def load(self, sha256s: Sequence[str], model: str) -> list[StoredChunk]:
        """Every stored chunk of these documents for ``model``, in document order."""
        return await self._db.read(lambda conn: _load(conn, list(sha256s), model))

    async def delete_document(self, sha256: str) -> int:
        """Forget a document's vectors under every model (its file was deleted); how many sets."""
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM document_embeddings WHERE sha256 = ?", (sha256,)).rowcount
        return await self._db.write(op)


__all__ = ["StoredChunk", "VectorStore", "pack", "unpack"]
