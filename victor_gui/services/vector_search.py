"""Ranking an attached document's chunks for a question: vector cosine, BM25, and the two fused.

**Vectors.** Cosine similarity of the question's vector with every candidate chunk's vector,
with NumPy (the ``documents`` extra) as one matrix product, else in pure Python. Only the chunks
of the documents attached to the chat are candidates: a 300-page PDF is ~1,000 chunks, and a
flat scan of 100,000 768-number vectors measured 27 ms with NumPy (stored at length 1, so one
dot product each; 0.6 s for the whole question with reading them and FTS5, 10 ms at 1,000
chunks: bench/bench_retrieval.py), so no index is needed; sqlite-vec is not an option anyway
(Python's sqlite3 here cannot load extensions). The pass runs in a worker thread
(:func:`rank_vectors`), never on the event loop.

**Words.** BM25 from SQLite's FTS5 over the same chunks (:meth:`VectorStore.lexical
<victor_gui.storage.vectors.VectorStore.lexical>`), the question's words against each chunk's:
a name, a number or a rare term the question repeats is found even when the embedding model is
small or was not trained on the document's language.

**Fused.** Reciprocal rank fusion (``1/(60 + rank)`` summed over the two rankings, Cormack et
al. 2009): no score scales to calibrate between a cosine and a BM25 figure, and a chunk near the
top of either list comes up. The words' best :data:`POOL` chunks are fused with their true
vector rank (however low), the vectors' best :data:`POOL` with their BM25 rank when they have
one; a chunk that shares no word with the question has none.
"""

from __future__ import annotations

import bisect
import functools
import importlib.util
import math
import re
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

# NumPy (the ``documents`` extra) is imported on the first search, not with this module: the chat
# imports this module at start-up, and NumPy alone is ~14 MB of RSS and ~100 modules.
HAVE_NUMPY = importlib.util.find_spec("numpy") is not None


@functools.cache
def _numpy() -> Any:
    """The ``numpy`` module, imported on first use; None without the ``documents`` extra."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - the fallback is tested by passing use_numpy=False
        return None
    return numpy

RRF_K = 60
POOL = 50  # candidates taken from each ranking before fusing
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to say anything about which chunk answers (English; other languages rely on
# BM25's idf, which gives a word found in every chunk almost no weight anyway).
_STOP = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or that the this to was "
    "were what when where which who why will with does do did".split())

K = TypeVar("K", bound=Hashable)

if TYPE_CHECKING:
    from victor_gui.storage.vectors import StoredMatrix


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` that carry meaning (stop words dropped)."""
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _norm(v: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in v)) or 1.0


def cosine_scores(query: Sequence[float], matrix: Any, *, use_numpy: bool | None = None) -> list[float]:
    """Cosine of ``query`` with each row of ``matrix`` (a float32 NumPy array of shape
    ``(n, dim)``, or a list of float lists)."""
    if use_numpy is None:
        use_numpy = HAVE_NUMPY
    if use_numpy and _numpy() is not None:
        return [float(x) for x in _np_cosines(query, matrix)]
    qn = _norm(query)
    return [sum(a * b for a, b in zip(row, query, strict=False)) / (_norm(row) * qn) for row in matrix]


def _np_cosines(query: Sequence[float], matrix: Any) -> Any:
    np = _numpy()
    m = np.asarray(matrix, dtype=np.float32)
    if m.size == 0:
        return np.zeros(0, dtype=np.float32)
    q = np.asarray(query, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1)
    norms[norms == 0] = 1.0
    return (m @ q) / (norms * float(np.linalg.norm(q) or 1.0))


def matrix_from_blobs(blobs: Sequence[bytes], *, use_numpy: bool | None = None) -> Any:
    """Stack float32 BLOBs into the ``matrix`` :func:`cosine_scores` takes (NumPy when present)."""
    if use_numpy is None:
        use_numpy = HAVE_NUMPY
    if use_numpy and (np := _numpy()) is not None:
        if not blobs:
            return np.zeros((0, 0), dtype=np.float32)
        return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)
    from victor_gui.storage.vectors import unpack  # services may read storage's helpers

    return [unpack(b) for b in blobs]


def cosine_top(query: Sequence[float], matrix: Any, k: int, *,
               use_numpy: bool | None = None) -> list[tuple[int, float]]:
    """The ``k`` rows most similar to ``query``: ``(row, cosine)``, best first."""
    if use_numpy is None:
        use_numpy = HAVE_NUMPY and not isinstance(matrix, list)
    if use_numpy and (np := _numpy()) is not None:
        scores = _np_cosines(query, matrix)
        k = min(k, len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top]
    scores = cosine_scores(query, matrix, use_numpy=False)
    return sorted(enumerate(scores), key=lambda item: -item[1])[:k]


Key = tuple[str, int]  # (document sha256, chunk index)


def rank_vectors(query: Sequence[float], docs: Sequence[StoredMatrix], k: int = POOL,
                 also: Sequence[Key] = (), *, use_numpy: bool | None = None) -> dict[Key, int]:
    """Ranks by cosine over the documents' stored matrices (1 = most similar): the ``k`` best
    chunks, and the chunks ``also`` (the words' best) wherever they fall, so fusion sees their
    true vector rank. Call it in a worker thread (NumPy releases the GIL in the products)."""
    if use_numpy is None:
        use_numpy = HAVE_NUMPY
    starts: dict[str, int] = {}
    bounds: list[int] = []
    total = 0
    for d in docs:
        starts[d.sha256] = total
        bounds.append(total)
        total += d.rows
    if total == 0:
        return {}

    def key(row: int) -> Key:
        i = bisect.bisect_right(bounds, row) - 1
        return docs[i].sha256, row - bounds[i]

    wanted = [starts[sha] + idx for sha, idx in also if sha in starts]
    if use_numpy and (np := _numpy()) is not None:
        q = np.asarray(query, dtype=np.float32)
        q = q / float(np.linalg.norm(q) or 1.0)
        # Stored rows are unit vectors (VectorStore.put): the cosine is the dot product.
        scores = np.concatenate([np.frombuffer(d.data, dtype="<f4").reshape(d.rows, d.dim) @ q
                                  for d in docs])
        n = min(k, total)
        top = np.argpartition(-scores, n - 1)[:n] if n > 0 else np.zeros(0, dtype=int)
        top = top[np.argsort(-scores[top], kind="stable")]
        ranks = {key(int(row)): rank for rank, row in enumerate(top, start=1)}
        for row in wanted:
            ranks.setdefault(key(row), int((scores > scores[row]).sum()) + 1)
        return ranks
    from victor_gui.storage.vectors import unpack

    flat: list[float] = []
    qn = _norm(query)
    for d in docs:
        values = unpack(d.data)
        for r in range(d.rows):
            vec = values[r * d.dim:(r + 1) * d.dim]
            flat.append(sum(x * y for x, y in zip(vec, query, strict=False)) / qn)
    order = sorted(range(total), key=lambda i: -flat[i])
    full = {row: rank for rank, row in enumerate(order, start=1)}
    return {key(row): full[row] for row in [*order[:k], *wanted]}


def fuse(*rankings: Mapping[K, int], k: int) -> list[tuple[K, float]]:
    """The ``k`` best keys by reciprocal rank fusion of ``rankings`` (key -> 1-based rank)."""
    fused: dict[K, float] = {}
    for ranking in rankings:
        for key, rank in ranking.items():
            fused[key] = fused.get(key, 0.0) + 1 / (RRF_K + rank)
    best = {key: min(r[key] for r in rankings if key in r) for key in fused}
    return sorted(fused.items(), key=lambda item: (-item[1], best[item[0]]))[:k]


__all__ = ["HAVE_NUMPY", "POOL", "Key", "cosine_scores", "cosine_top", "fuse", "matrix_from_blobs",
           "rank_vectors", "words"]
