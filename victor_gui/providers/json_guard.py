"""Decoding a server's JSON without trusting its shape.

Every reply we read comes from a program we do not control. ``json.loads`` accepts any valid
JSON, so a reply can be well formed and still be the wrong *shape*: a number where an object
belongs (``{"models": [1]}``), ``1e400`` (a float infinity) where a context length belongs,
a string where a list belongs, or arrays nested 100,000 deep. Reading such a value with
``.get``/``[...]``/``int()`` raises ``AttributeError``, ``TypeError``, ``KeyError`` or
``OverflowError``, none of which the callers expect. The helpers here turn each of those into
the one typed error, :class:`~victor_gui.errors.InvalidResponseError`, whose message names the
reply and the field (``Ollama /api/tags: models[0] is a number, not an object``).

Deep nesting: :func:`loads` lets the C decoder refuse it (it raises ``RecursionError`` at the
interpreter's recursion limit, in well under a millisecond even at 100k levels) and reports
that as an invalid reply. A Python pre-scan counting ``[``/``{`` depth outside strings was
measured too: 11.9 ms for a 214 KB model listing against 2.3 ms for the decode itself, a loop
stall on every sweep for no gain, so it is not used.
"""

from __future__ import annotations

import json
import math
from typing import Any

from victor_gui.errors import InvalidResponseError

_KIND_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"),
    (list, "a list"), (dict, "an object"),
)


def describe(value: Any) -> str:
    """What a JSON value is, in words ("a number", "null", "an object" ...)."""
    if value is None:
        return "null"
    for kind, name in _KIND_NAMES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def loads(text: str | bytes, *, where: str, provider: str | None = None, status: int | None = None,
          model: str | None = None) -> Any:
    """Decode ``text``; malformed JSON, undecodable bytes, integers too long to convert and
    nesting past the decoder's limit all raise :class:`InvalidResponseError` naming ``where``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidResponseError(f"{where}: the reply is nested too deeply to read", provider,
                                   status_code=status, model=model) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise InvalidResponseError(f"{where}: the reply is not valid JSON: {exc}", provider,
                                   status_code=status, model=model, raw_error=exc) from None


def loads_object(text: str | bytes, *, where: str, provider: str | None = None, model: str | None = None,
                 partial: str | None = None) -> dict[str, Any]:
    """:func:`loads` for a reply that must be one JSON object (a stream event); ``partial`` is the
    text already delivered, kept on the error."""
    try:
        value = loads(text, where=where, provider=provider, model=model)
        return Shape(where, provider, model=model).obj(value)
    except InvalidResponseError as exc:
        exc.partial_content = partial or None
        raise


class Shape:
    """Typed access to one decoded reply: each getter checks the value it returns and raises
    :class:`InvalidResponseError` naming the field path (``models[0].size``) otherwise.

    A missing key or ``null`` reads as absent (None / an empty list) for the ``opt_*`` getters:
    servers omit fields freely across versions; only a present value of the wrong type is an
    error.
    """

    def __init__(self, where: str, provider: str | None = None, *, model: str | None = None) -> None:
        self.where = where
        self.provider = provider
        self.model = model

    def error(self, path: str, problem: str) -> InvalidResponseError:
        return InvalidResponseError(f"{self.where}: {path} {problem}", self.provider, model=self.model)

    def wrong(self, path: str, value: Any, wanted: str) -> InvalidResponseError:
        return self.error(path, f"is {describe(value)}, not {wanted}")

    def obj(self, value: Any, path: str = "the reply") -> dict[str, Any]:
        """``value`` as a JSON object."""
        if not isinstance(value, dict):
            raise self.wrong(path, value, "an object")
        return value

    def array(self, value: Any, path: str = "the reply") -> list[Any]:
        """``value`` as a JSON list."""
        if not isinstance(value, list):
            raise self.wrong(path, value, "a list")
        return value

    def items(self, data: dict[str, Any], key: str, path: str = "") -> list[Any]:
        """``data[key]`` as a list (absent or null: empty)."""
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.wrong(_join(path, key), value, "a list")
        return value

    def objects(self, data: dict[str, Any], key: str, path: str = "") -> list[dict[str, Any]]:
        """``data[key]`` as a list of objects (absent or null: empty)."""
        where = _join(path, key)
        return [self.obj(item, f"{where}[{i}]") for i, item in enumerate(self.items(data, key, path))]

    def opt_obj(self, data: dict[str, Any], key: str, path: str = "") -> dict[str, Any] | None:
        value = data.get(key)
        return None if value is None else self.obj(value, _join(path, key))

    def opt_str(self, data: dict[str, Any], key: str, path: str = "") -> str | None:
        value = data.get(key)
        if value is None or isinstance(value, str):
            return value
        raise self.wrong(_join(path, key), value, "a string")

    def req_str(self, data: dict[str, Any], key: str, path: str = "") -> str:
        value = self.opt_str(data, key, path)
        if value is None:
            raise self.error(_join(path, key), "is missing")
        return value

    def opt_bool(self, data: dict[str, Any], key: str, path: str = "") -> bool | None:
        value = data.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.wrong(_join(path, key), value, "true or false")

    def opt_count(self, data: dict[str, Any], key: str, path: str = "") -> int | None:
        """A whole number ≥ 0 (a size, a context length). A float with no fraction counts
        (some servers write ``4096.0``); infinities, NaN, negatives, fractions and booleans do not."""
        value = data.get(key)
        if value is None:
            return None
        where = _join(path, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.wrong(where, value, "a whole number")
        if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
            raise self.error(where, f"is {value!r}, not a whole number")
        if value < 0:
            raise self.error(where, f"is {value!r}, a negative count")
        if value > MAX_COUNT:
            raise self.error(where, f"is {value!r}, an impossible count")
        return int(value)

    def opt_fraction(self, data: dict[str, Any], key: str, path: str = "") -> float | None:
        """A finite number (a rate, a share)."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.wrong(_join(path, key), value, "a finite number")
        return float(value)


# Above any size, token count or context length a real server reports (2**53: past it a JSON
# number loses integer precision in most servers' languages anyway).
MAX_COUNT = 2**53


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
