"""What a GGUF header holds once read: version, metadata, tensor table, and the bounds a header
must respect (:class:`GGUFLimits`). Parsed by :mod:`.gguf_parse`, read from a file or a URL by
:mod:`.gguf_reader`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from victor_gui.sizing.ggml_types import type_name

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class GGUFLimits:
    """Bounds a header must respect; real files sit far below every one of them."""

    max_tensors: int = 1 << 16  # DeepSeek-V3 has ~1,150 tensors
    max_kv: int = 1 << 16
    max_string: int = 8 * MiB  # chat templates reach ~100 KB
    max_key: int = 1 << 16
    max_array: int = 1 << 24  # vocabularies reach ~260k tokens, merges ~500k
    max_depth: int = 2  # an array of arrays, no deeper
    max_dims: int = 8  # ggml has 4
    max_bytes: int = 64 * MiB  # total header bytes looked at
    keep_array_items: int = 1 << 12  # longer arrays are counted, not kept (see GGUFArray)
    # Array items kept as Python objects in one header (a Python int costs ~18x an int16 of
    # the file). Past this, number arrays are kept compactly (array.array) and string or
    # nested arrays are counted, so memory stays near the header's own size.
    keep_total_items: int = 1 << 16


@dataclass(frozen=True, slots=True)
class GGUFArray:
    """A long array (tokens, merges, scores) summarised as its item type and length.

    A vocabulary as Python objects costs more time and memory than the whole estimate (and a
    hostile file could use it to amplify memory); the estimator only needs the counts.
    """

    item_type: int
    count: int

    def __len__(self) -> int:
        return self.count


class TensorInfo(NamedTuple):
    """One tensor-table entry: ``shape`` is ggml order (ne0 first), ``offset`` relative to the data.

    A named tuple rather than a frozen dataclass: a big model has ~1,000 entries, and a frozen
    dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost 4x as much per entry.
    """

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int
    n_elements: int
    n_bytes: int

    @property
    def type_name(self) -> str:
        return type_name(self.ggml_type)


@dataclass(slots=True)
class GGUFHeader:
    """A parsed header: version, metadata, tensor table and where the data would start."""

    version: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int
    bytes_read: int = 0
    file_size: int | None = None
    source: str = ""
    _by_name: dict[str, TensorInfo] = field(default_factory=dict, repr=False)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    def tensor(self, name: str) -> TensorInfo | None:
        if not self._by_name:
            self._by_name = {t.name: t for t in self.tensors}
        return self._by_name.get(name)
