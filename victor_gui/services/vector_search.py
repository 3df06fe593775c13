"""Ranking an attached document's chunks for a question: vector cosine, BM25, and the two fused.

**Vectors.** Cosine similarity of the question's vector with every candidate chunk's vector,
with NumPy (the ``documents`` extra) as one matrix product, else in pure Python. Only the
chunks of the documents attached to the chat are candidates, so the matrix is small: a 300-page
PDF is ~1,000 chunks. The figures (bench/bench_retrieval.py) say a flat scan is enough: see
:func:`cosine_top` and the report of the bench. sqlite-vec is not an option (Python's sqlite3
here cannot load extensions).

**Words.** BM25 (k1 1.2, b 0.75) over the same chunks, the question's words against each
chunk's: a name, a number or a rare term the question repeats is found even when the embedding
model is small or was not trained on the document's language.

**Fused.** Reciprocal rank fusion (``1/(60 + rank)`` summed over the two rankings, Cormack et
al. 2009): no score scales to calibrate between a cosine and a BM25 figure, and a chunk near the
top of either list comes up. A chunk that shares no word with the question has no BM25 rank.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

_np: Any
try:  # the ``documents`` extra
    import numpy as _np
except ImportError:  # pragma: no cover - the fallback is tested by passing use_numpy=False
    _np = None

HAVE_NUMPY = _np is not None
RRF_K = 60
_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to say anything about which chunk answers (English; other languages rely on
# BM25's idf, which gives a word found in every chunk almost no weight anyway).
_STOP = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or that the this to was "
    "were what when where which who why will with does do did".split())


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
    if use_numpy and _np is not None:
        m = _np.asarray(matrix, dtype=_np.float32)
        if m.size == 0:
            return []
        q = _np.asarray(query, dtype=_np.float32)
        norms = _np.linalg.norm(m, axis=1)
        norms[norms == 0] = 1.0
        scores = (m @ q) / (norms * float(_np.linalg.norm(q) or 1.0))
        return [float(x) for x in scores]
    qn = _norm(query)
    return [sum(a * b for a, b in zip(row, query, strict=False)) / (_norm(row) * qn) for row in matrix]


def matrix_from_blobs(blobs: Sequence[bytes]) -> Any:
    """Stack float32 BLOBs into the ``matrix`` :func:`cosine_scores` takes (NumPy when present)."""
    if HAVE_NUMPY and _np is not None:
        if not blobs:
            return _np.zeros((0, 0), dtype=_np.float32)
        return _np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1)
    from victor_gui.storage.vectors import unpack  # services may read storage's helpers

    return [unpack(b) for b in blobs]


def bm25_scores(question: str, texts: Sequence[str], *, k1: float = 1.2, b: float = 0.75) -> list[float]:
    """BM25 of ``question`` against each text (0 for a text with none of its words)."""
    q = set(words(question))
    if not q or not texts:
        return [0.0] * len(texts)
    docs = [Counter(words(t)) for t in texts]
    n = len(docs)
    avg = sum(sum(d.values()) for d in docs) / n or 1.0
    df = {w: sum(1 for d in docs if w in d) for w in q}
    out = []
    for d in docs:
        length = sum(d.values())
        score = 0.0
        for w in q:
            tf = d.get(w, 0)
            if tf:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg))
        out.append(score)
    return out


def _ranks(scores: Sequence[float], *, positive_only: bool) -> dict[int, int]:
    order = sorted((i for i, s in enumerate(scores) if s > 0 or not positive_only),
                   key=lambda i: -scores[i])
    return {i: rank for rank, i in enumerate(order, start=1)}


def fuse(vector: Sequence[float], lexical: Sequence[float], k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(index, fused score)`` by reciprocal rank fusion, best first."""
    vr = _ranks(vector, positive_only=False)
    lr = _ranks(lexical, positive_only=True)
    fused = {i: 1 / (RRF_K + r) for i, r in vr.items()}
    for i, r in lr.items():
        fused[i] = fused.get(i, 0.0) + 1 / (RRF_K + r)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]


def cosine_top(query: Sequence[float], matrix: Any, k: int) -> list[tuple[int, float]]:
    """The ``k`` rows most similar to ``query`` (for the bench and pure-vector callers)."""
    if HAVE_NUMPY and _np is not None and not isinstance(matrix, list):
        m = _np.asarray(matrix, dtype=_np.float32)
        if m.size == 0:
            return []
        q = _np.asarray(query, dtype=_np.float32)
        norms = _np.linalg.norm(m, axis=1)
        norms[norms == 0] = 1.0
        scores = (m @ q) / norms
        k = min(k, len(scores))
        top = _np.argpartition(-scores, k - 1)[:k]
        top = top[_np.argsort(-scores[top])]
        qn = float(_np.linalg.norm(q) or 1.0)
        return [(int(i), float(scores[i]) / qn) for i in top]
    scores = cosine_scores(query, matrix, use_numpy=False)
    return sorted(enumerate(scores), key=lambda item: -item[1])[:k]


__all__ = ["HAVE_NUMPY", "bm25_scores", "cosine_scores", "cosine_top", "fuse", "matrix_from_blobs", "words"]
