"""The platform-neutral dialog engine, the dialogs and the tool catalogue."""
from __future__ import annotations

from dialogs.engine import Dialog


def all_dialogs() -> list[Dialog]:
    """A fresh instance of every dialog Baton offers, in the order `help` lists them."""
    from dialogs.checkin import CheckinDialog
    from dialogs.leave import LeaveDialog
    from dialogs.settings import SettingsDialog
    from dialogs.team import TeamDialog

    return [CheckinDialog(), LeaveDialog(), TeamDialog(), SettingsDialog()]
