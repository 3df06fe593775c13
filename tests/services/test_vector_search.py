"""The ranking arithmetic: NumPy and the pure-Python fallback agree, BM25 favours the chunk that
names the question's rare words, and the fusion puts a chunk first in either ranking near the top."""

from __future__ import annotations

import random

import numpy as np
import pytest

from victor_gui.services.vector_search import (
    bm25_scores,
    cosine_scores,
    cosine_top,
    fuse,
    matrix_from_blobs,
    words,
)
from victor_gui.storage.vectors import pack, unpack


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


def test_pack_is_float32_little_endian() -> None:
    blob = pack([1.0, -2.5])
    assert blob == np.array([1.0, -2.5], dtype="<f4").tobytes() and unpack(blob) == [1.0, -2.5]


def test_bm25_prefers_the_chunk_with_the_rare_words() -> None:
    texts = ["the cat sat on the mat", "valve seven opens at quartz nineteen", "the dog and the cat"]
    scores = bm25_scores("When does valve seven open?", texts)
    assert scores[1] > 0 and scores[0] == scores[2] == 0.0
    assert words("What IS the Valve?") == ["valve"]


def test_fusion_lifts_a_lexical_match_over_vector_noise() -> None:
    vector = [0.9, 0.8, 0.1, 0.7]  # index 2 is last by vectors
    lexical = [0.0, 0.0, 5.0, 0.0]  # but the only chunk with the question's words
    ranked = fuse(vector, lexical, 2)
    assert ranked[0][0] == 2 and ranked[1][0] == 0
    assert fuse([], [], 3) == []
