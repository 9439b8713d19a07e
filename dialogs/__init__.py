"""The platform-neutral dialog engine, the dialogs and the tool catalogue."""
from __future__ import annotations

from dialogs.engine import Dialog


def all_dialogs(*, catalogue_file: str | None = None) -> list[Dialog]:
    """A fresh instance of every dialog Baton offers, in the order `help` lists them.

    `catalogue_file` is an organisation's own tool catalogue (added to or overriding the shipped one).
    """
    from dialogs.checkin import CheckinDialog
    from dialogs.feedback import FeedbackDialog, KudosDialog, RequestDialog
    from dialogs.goals import GoalsDialog
    from dialogs.leave import LeaveDialog
    from dialogs.review360 import Review360Dialog
    from dialogs.settings import SettingsDialog
    from dialogs.team import TeamDialog
    from dialogs.tools import ToolsDialog

    return [
        CheckinDialog(),
        GoalsDialog(),
        FeedbackDialog(),
        RequestDialog(),
        KudosDialog(),
        ToolsDialog(catalogue_file),
        Review360Dialog(),
        LeaveDialog(),
        TeamDialog(),
        SettingsDialog(),
    ]
