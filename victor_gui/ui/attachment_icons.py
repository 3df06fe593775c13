"""Small line icons for attachments (paper clip, document, image), drawn from SVG so they need
no emoji font (a box on many Linux desktops). Shapes after Feather icons (MIT licence)."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon, QPixmap

# A grey readable on the light and the dark theme alike.
ICON_GREY = "#7d8590"

_SHAPES = {
    "paperclip": '<path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66'
                 'l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48"/>',
    "document": '<path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z"/>'
                '<polyline points="14 2 14 8 20 8"/><line x1="16" y1="13" x2="8" y2="13"/>'
                '<line x1="16" y1="17" x2="8" y2="17"/><polyline points="10 9 9 9 8 9"/>',
    "image": '<rect x="3" y="3" width="18" height="18" rx="2" ry="2"/><circle cx="8.5" cy="8.5" r="1.5"/>'
             '<polyline points="21 15 16 10 5 21"/>',
    "alert": '<circle cx="12" cy="12" r="10"/><line x1="12" y1="8" x2="12" y2="12"/>'
             '<line x1="12" y1="16" x2="12.01" y2="16"/>',
}


@cache
def icon_pixmap(name: str, size: int = 24, color: str = ICON_GREY) -> QPixmap:
    """The icon ``name`` as a ``size``-pixel pixmap in ``color``."""
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 24 24" '
           f'fill="none" stroke="{color}" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">'
           f'{_SHAPES[name]}</svg>')
    pixmap = QPixmap()
    pixmap.loadFromData(svg.encode(), "SVG")
    return pixmap


def icon(name: str, size: int = 24, color: str = ICON_GREY) -> QIcon:
    """The icon ``name`` for a button."""
    return QIcon(icon_pixmap(name, size, color))
