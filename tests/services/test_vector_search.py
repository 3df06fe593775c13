"""The ranking arithmetic: NumPy and the pure-Python fallback agree, and the fusion puts a chunk
that tops either ranking near the top."""

from __future__ import annotations

import random

import numpy as np
import pytest

from victor_gui.services.vector_search import (
    cosine_scores,
    cosine_top,
    fuse,
    matrix_from_blobs,
    rank_vectors,
    words,
)
from victor_gui.storage.vectors import StoredMatrix, pack, unit, unpack


def test_numpy_and_pure_python_give_the_same_cosines() -> None:
    rng = random.Random(7)
    rows = [[rng.uniform(-1, 1) for _ in range(48)] for _ in range(200)]
    rows[3] = [0.0] * 48  # a zero vector scores 0, not NaN
    query = [rng.uniform(-1, 1) for _ in range(48)]
    matrix = matrix_from_blobs([pack(r) for r in rows])
    assert isinstance(matrix, np.ndarray) and matrix.shape == (200, 48)
    fast = cosine_scores(query, matrix, use_numpy=True)
    slow = cosine_scores(query, [unpack(pack(r)) for r in rows], use_numpy=False)
    assert fast == pytest.approx(slow, abs=1e-5) and fast[3] == 0.0
    best = max(range(200), key=lambda i: slow[i])
    assert cosine_top(query, matrix, 3)[0][0] == best
    assert cosine_top(query, [unpack(pack(r)) for r in rows], 3)[0][0] == best
    # The same rows as two stored documents: ranks come back keyed (sha256, index) either way.
    docs = [StoredMatrix("a", 120, 48, b"".join(pack(unit(r)) for r in rows[:120])),
            StoredMatrix("b", 80, 48, b"".join(pack(unit(r)) for r in rows[120:]))]

    def key(row: int) -> tuple[str, int]:
        return ("a", row) if row < 120 else ("b", row - 120)

    for use_numpy in (True, False):
        ranks = rank_vectors(query, docs, 3, also=[("a", 3), ("b", 79)], use_numpy=use_numpy)
        top = sorted((r, k) for k, r in ranks.items())
        assert [k for _, k in top][:3] == [key(row) for row, _ in cosine_top(query, matrix, 3)]
        assert ranks[("a", 3)] == 1 + sum(s > 0.0 for s in slow)  # the zero vector's true rank
        assert ranks[("b", 79)] == 1 + sum(s > slow[199] + 1e-6 for s in slow)
    pure = matrix_from_blobs([pack(r) for r in rows], use_numpy=False)
    assert isinstance(pure, list) and cosine_top(query, pure, 1)[0][0] == best


def test_pack_is_float32_little_endian() -> None:
    blob = pack([1.0, -2.5])
    assert blob == np.array([1.0, -2.5], dtype="<f4").tobytes() and unpack(blob) == [1.0, -2.5]


def test_fusion_lifts_a_lexical_match_over_vector_noise() -> None:
    by_vector = {"a": 1, "b": 2, "d": 3, "c": 4}  # "c" is last by vectors
    by_words = {"c": 1}  # but the only chunk with the question's words
    ranked = fuse(by_vector, by_words, k=2)
    assert [key for key, _ in ranked] == ["c", "a"]
    assert fuse({}, {}, k=3) == []
    assert words("What IS the Valve?") == ["valve"]
