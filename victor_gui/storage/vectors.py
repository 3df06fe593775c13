"""Document chunks and their embedding vectors, in the conversation database (schema v7 tables
``document_embeddings``, ``document_chunks`` and the FTS5 index ``document_chunks_fts``).

Keyed by the document's content hash and the embedding model's id (``provider/model``): the
same file is embedded once per model, whatever conversation attached it, and another model
embeds it again beside the first. A document's vectors are one float32 little-endian BLOB (row
``i`` is chunk ``i``'s vector), written in one transaction with its chunks, so a set is either
complete or absent (an app killed while embedding leaves nothing half-written to be trusted).

Everything runs on the store's threads (:class:`~victor_gui.storage.db.Database`): the event
loop never waits on SQLite.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from victor_gui.storage.db import Database


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored: its document, its place there, and its text."""

    sha256: str
    index: int
    locator: str
    text: str


@dataclass(frozen=True)
class StoredMatrix:
    """A document's vectors under one model: ``rows`` unit vectors of ``dim`` float32 numbers."""

    sha256: str
    rows: int
    dim: int
    data: bytes  # rows * dim float32, little-endian, row i = chunk i, each of length 1


def pack(vector: Sequence[float]) -> bytes:
    """``vector`` as float32 little-endian bytes."""
    data = array("f", vector)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tobytes()


def unit(vector: Sequence[float]) -> list[float]:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [0.0 for _ in vector]


def unpack(blob: bytes) -> list[float]:
    """The numbers of a :func:`pack` BLOB."""
    data = array("f")
    data.frombytes(blob)
    if sys.byteorder != "little":
        data.byteswap()
    return data.tolist()


def fts_query(terms: Sequence[str]) -> str:
    """An FTS5 query matching any of ``terms``, each a quoted phrase (never FTS5 syntax)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms) if t)


def _in(values: Sequence[str]) -> str:
    return ",".join("?" * len(values))


def _embedded(conn: sqlite3.Connection, sha256: str, model: str, chunking: str) -> bool:
    row = conn.execute("SELECT chunking FROM document_embeddings WHERE sha256 = ? AND model = ?",
                       (sha256, model)).fetchone()
    return row is not None and row[0] == chunking


def _put(conn: sqlite3.Connection, sha256: str, model: str, chunking: str,
         chunks: Sequence[tuple[str, str]], dim: int, matrix: bytes) -> None:
    # A set cut another way (new chunk size) is replaced whole; the cascade drops its chunks.
    conn.execute("DELETE FROM document_embeddings WHERE sha256 = ? AND model = ?", (sha256, model))
    conn.execute("INSERT INTO document_embeddings (sha256, model, chunking, chunks, dim, vectors, "
                 "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (sha256, model, chunking, len(chunks), dim, matrix, time.time()))
    conn.executemany("INSERT INTO document_chunks (sha256, model, idx, locator, text) "
                     "VALUES (?, ?, ?, ?, ?)",
                     [(sha256, model, idx, locator, text) for idx, (locator, text) in enumerate(chunks)])


def _matrices(conn: sqlite3.Connection, sha256s: Sequence[str], model: str) -> list[StoredMatrix]:
    out = []
    for sha in dict.fromkeys(sha256s):
        row = conn.execute("SELECT chunks, dim, vectors FROM document_embeddings "
                           "WHERE sha256 = ? AND model = ?", (sha, model)).fetchone()
        if row is not None and row[0]:
            out.append(StoredMatrix(sha, int(row[0]), int(row[1]), bytes(row[2])))
    return out


def _lexical(conn: sqlite3.Connection, terms: Sequence[str], sha256s: Sequence[str], model: str,
             limit: int) -> list[tuple[str, int, float]]:
    query = fts_query(terms)
    shas = list(dict.fromkeys(sha256s))
    if not query or not shas:
        return []
    rows = conn.execute(
        "SELECT c.sha256, c.idx, bm25(document_chunks_fts) AS rank FROM document_chunks_fts "
        "JOIN document_chunks c ON c.rowid = document_chunks_fts.rowid "
        f"WHERE document_chunks_fts MATCH ? AND c.model = ? AND c.sha256 IN ({_in(shas)}) "
        "ORDER BY rank LIMIT ?", (query, model, *shas, limit))
    return [(sha, idx, -rank) for sha, idx, rank in rows]  # FTS5's bm25 is lower-is-better


def _chunks(conn: sqlite3.Connection, keys: Sequence[tuple[str, int]], model: str) -> list[StoredChunk]:
    out: list[StoredChunk] = []
    for sha, idx in keys:
        row = conn.execute("SELECT locator, text FROM document_chunks "
                           "WHERE sha256 = ? AND model = ? AND idx = ?", (sha, model, idx)).fetchone()
        if row is not None:
            out.append(StoredChunk(sha, idx, row[0], row[1]))
    return out


class VectorStore:
    """Async access to the stored chunks and vectors of one database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def is_embedded(self, sha256: str, model: str, chunking: str) -> bool:
        """Whether a complete set of ``model``'s vectors cut by ``chunking`` is stored."""
        return await self._db.read(lambda conn: _embedded(conn, sha256, model, chunking))

    async def put(self, sha256: str, model: str, chunking: str,
                  chunks: Sequence[tuple[str, str, Sequence[float]]]) -> None:
        """Store a document's whole set: ``(locator, text, vector)`` per chunk, in document
        order (chunk ``i`` is the ``i``-th); every vector has the same width. Vectors are stored
        scaled to length 1, so a search's cosine is one dot product per chunk."""
        dim = len(chunks[0][2]) if chunks else 0
        if any(len(vec) != dim for _, _, vec in chunks):
            raise ValueError("vectors of one document must have one width")
        rows = [(locator, text) for locator, text, _ in chunks]
        vecs = [vec for _, _, vec in chunks]

        # Scaled and packed in a worker (1,000 x 768 numbers in Python would hold the event loop
        # for a tenth of a second), before the write transaction, which it would hold as long.
        matrix = await asyncio.to_thread(lambda: b"".join(pack(unit(v)) for v in vecs))
        await self._db.write(lambda conn: _put(conn, sha256, model, chunking, rows, dim, matrix))

    async def matrices(self, sha256s: Sequence[str], model: str) -> list[StoredMatrix]:
        """These documents' vector matrices under ``model`` (documents not embedded by it left out)."""
        return await self._db.read(lambda conn: _matrices(conn, list(sha256s), model))

    async def lexical(self, terms: Sequence[str], sha256s: Sequence[str], model: str,
                      limit: int) -> list[tuple[str, int, float]]:
        """The ``limit`` chunks of these documents that best match any of ``terms`` by FTS5's
        BM25: ``(sha256, index, score)``, best (highest) first."""
        return await self._db.read(lambda conn: _lexical(conn, list(terms), list(sha256s), model, limit))

    async def chunks(self, keys: Sequence[tuple[str, int]], model: str) -> list[StoredChunk]:
        """The chunks named by ``keys`` (``(sha256, index)``), in that order."""
        return await self._db.read(lambda conn: _chunks(conn, list(keys), model))

    async def delete_document(self, sha256: str) -> int:
        """Forget a document's vectors under every model (its file was deleted); how many sets."""
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM document_embeddings WHERE sha256 = ?", (sha256,)).rowcount
        return await self._db.write(op)


__all__ = ["StoredChunk", "StoredMatrix", "VectorStore", "fts_query", "pack", "unit", "unpack"]
