"""Settings → Appearance & data: the update rows (check automatically on/off, the feed URL).

They edit ``settings.updates`` through the settings service (its one owner); the update service
reads it at each check (services/updates.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtWidgets import QCheckBox, QFormLayout, QLineEdit

from victor_gui.config.settings import Settings


class UpdateRows:
    """Adds the update rows to ``form``; ``update(**fields)`` saves through the settings owner."""

    def __init__(self, form: QFormLayout, settings: Callable[[], Settings],
                 update: Callable[..., Awaitable[bool]], spawn: Callable[[Awaitable[Any]], Any],
                 saved_field: Callable[[Callable[[str], object]], QLineEdit]) -> None:
        """``saved_field(save)`` adds the dialog's text-field-with-Save row for the feed URL."""
        self._settings = settings
        self._update = update
        self._spawn = spawn
        self.check_box = QCheckBox("Check for updates (at most once a day, a few seconds after start)")
        self.check_box.setAccessibleName("Check for updates automatically")
        self.check_box.clicked.connect(lambda on: self._spawn(self.set_check(bool(on))))
        form.addRow("Updates", self.check_box)
        self.feed_edit = saved_field(lambda text: self._spawn(self.set_feed(text)))

    def show_settings(self) -> None:
        current = self._settings().updates
        self.check_box.setChecked(current.check)
        if not self.feed_edit.hasFocus():  # never overwrite what the user is typing
            self.feed_edit.setText(current.feed_url)

    async def set_check(self, on: bool) -> bool:
        """Turn automatic checking on or off."""
        return await self._update(updates=self._settings().updates.model_copy(update={"check": on}))

    async def set_feed(self, url: str) -> bool:
        """Use another release feed (a mirror, a test feed); validated before it is saved."""
        current = self._settings().updates
        return await self._update(updates={"check": current.check, "feed_url": url.strip()})
