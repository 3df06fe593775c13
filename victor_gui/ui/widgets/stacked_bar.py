"""A horizontal stacked bar: coloured segments against a capacity line (e.g. free VRAM).

Segments that overflow the capacity are drawn past a marked line, so "it does not fit" is
visible at a glance; the scale is ``max(capacity, sum of segments)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


@dataclass(frozen=True)
class Segment:
    """One part of the bar: a label (for the tooltip and legend), a value and a colour."""

    label: str
    value: float
    color: str


def human_bytes(n: float | None) -> str:
    """1.9 GiB, 512 MiB, 0 B — binary units, as GPU tools report them."""
    if n is None:
        return "?"
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


class StackedBar(QWidget):
    """Segments left to right, a capacity marker, and a tooltip listing every part."""

    def __init__(self, parent: QWidget | None = None, *, name: str = "Memory use") -> None:
        super().__init__(parent)
        self._segments: tuple[Segment, ...] = ()
        self._capacity = 0.0
        self._capacity_label = "free"
        self.setAccessibleName(name)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(18)

    def sizeHint(self) -> QSize:
        return QSize(240, 18)

    @property
    def segments(self) -> tuple[Segment, ...]:
        return self._segments

    @property
    def capacity(self) -> float:
        return self._capacity

    @property
    def overflows(self) -> bool:
        return self._capacity > 0 and sum(s.value for s in self._segments) > self._capacity

    def set_parts(self, segments: Sequence[Segment], capacity: float, capacity_label: str = "free") -> None:
        """Draw ``segments`` against ``capacity`` (0: no capacity line)."""
        self._segments = tuple(s for s in segments if s.value > 0)
        self._capacity = float(capacity)
        self._capacity_label = capacity_label
        lines = [f"{s.label}: {human_bytes(s.value)}" for s in self._segments]
        if capacity:
            lines.append(f"{capacity_label}: {human_bytes(capacity)}")
        text = "\n".join(lines) or "nothing"
        self.setToolTip(text)
        self.setAccessibleDescription(text.replace("\n", "; "))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        # The empty track in the theme's colours (ui/theme.py sets the palette): light or dark.
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.setBrush(self.palette().base().color())
        painter.drawRoundedRect(rect, 3, 3)
        total = sum(s.value for s in self._segments)
        scale = max(total, self._capacity, 1.0)
        x = rect.left()
        painter.setPen(Qt.PenStyle.NoPen)
        for seg in self._segments:
            width = rect.width() * seg.value / scale
            painter.setBrush(QColor(seg.color))
            painter.drawRect(QRectF(x, rect.top() + 1, width, rect.height() - 2))
            x += width
        if self._capacity:
            cx = rect.left() + rect.width() * self._capacity / scale
            if total > self._capacity:  # hatch the part that does not fit
                painter.setBrush(QColor(176, 0, 32, 60))
                painter.drawRect(QRectF(cx, rect.top() + 1, x - cx, rect.height() - 2))
            over = total > self._capacity
            painter.setPen(QPen(QColor("#b00020") if over else self.palette().text().color(), 2))
            painter.drawLine(int(cx), int(rect.top()), int(cx), int(rect.bottom()))
