"""Moving the data folder while the app runs: close, copy and verify, switch settings, reopen.

The order matters for safety: settings point at the new folder only after the copy verified;
the old folder is never deleted here (the user removes it when they choose). If anything fails,
the store is reopened where it was and the error is returned with it, so the app always holds a
working store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from victor_gui.errors import ConfigError, StorageError
from victor_gui.services.settings_service import SettingsService
from victor_gui.storage import ConversationStore, StoreNotice, open_store
from victor_gui.storage.location import MoveResult, move_data_dir


@dataclass
class DataDirSwitch:
    """The store to use from now on, and how the move went."""

    store: ConversationStore
    result: MoveResult | None = None
    error: StorageError | ConfigError | None = None
    notice: StoreNotice | None = None


async def switch_data_dir(store: ConversationStore, settings: SettingsService,
                          new_dir: Path | str) -> DataDirSwitch:
    """Move the conversations to ``new_dir`` and point ``data_dir`` there, through the app's
    one :class:`SettingsService` (a failed write changes nothing: it validates and saves
    before it swaps its settings)."""
    old_dir = store.path.parent
    instance = store.holds_instance  # the app keeps its single-instance lock on the new folder
    await store.close()
    try:
        result = await move_data_dir(old_dir, new_dir)
        try:
            await settings.update(data_dir=str(result.new_dir))
        except ValueError as exc:  # pydantic refused the folder (inside the install, ...)
            raise StorageError(str(exc)) from None
    except (StorageError, ConfigError) as exc:
        reopened, notice = await open_store(old_dir, instance=instance)
        return DataDirSwitch(reopened, None, exc, notice)
    except OSError as exc:
        reopened, notice = await open_store(old_dir, instance=instance)
        return DataDirSwitch(reopened, None, StorageError(f"Moving the data folder failed: {exc}"), notice)
    moved, notice = await open_store(result.new_dir, instance=instance)
    return DataDirSwitch(moved, result, None, notice)
