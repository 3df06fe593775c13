"""A latency sparkline: the last N probe latencies as a small line, newest on the right."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget


class Sparkline(QWidget):
    """Draws ``values`` (seconds) scaled to the widget; the tooltip gives min/avg/max in ms."""

    def __init__(self, parent: QWidget | None = None, *, points: int = 30) -> None:
        super().__init__(parent)
        self.points = points
        self._values: tuple[float, ...] = ()
        self.setAccessibleName("Latency history")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setMinimumSize(self.sizeHint())

    def sizeHint(self) -> QSize:
        return QSize(120, 26)

    @property
    def values(self) -> tuple[float, ...]:
        return self._values

    def set_values(self, values: Sequence[float]) -> None:
        """Show the last ``points`` of ``values`` (a view of the status, not kept state)."""
        values = tuple(values)[-self.points:]
        if values == self._values:
            return
        self._values = values
        if values:
            ms = [v * 1000 for v in values]
            text = (f"Latency of the last {len(ms)} probes: min {min(ms):.0f} ms, "
                    f"avg {sum(ms) / len(ms):.0f} ms, max {max(ms):.0f} ms")
        else:
            text = "No latency measured yet"
        self.setToolTip(text)
        self.setAccessibleDescription(text)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(2, 3, -2, -3)
        painter.setPen(QPen(QColor("#e1e4ea"), 1))
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        values = self._values
        if not values:
            return
        top = max(max(values), 1e-6)
        step = rect.width() / max(self.points - 1, 1)
        x0 = rect.right() - step * (len(values) - 1)
        # Headroom above the peak, so one probe (or a flat run) sits mid-height, not on the edge.
        scale = rect.height() / (top * 1.6 if len(set(values)) > 1 else top * 2)
        points = [QPointF(x0 + i * step, rect.bottom() - v * scale) for i, v in enumerate(values)]
        line = QPolygonF(points)
        painter.setPen(QPen(QColor("#3b6fc4"), 1.5))
        if len(values) == 1:
            painter.setBrush(QColor("#3b6fc4"))
            painter.drawEllipse(points[0], 2, 2)
        else:
            painter.drawPolyline(line)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor("#3b6fc4"))
        painter.drawEllipse(points[-1], 2.2, 2.2)
