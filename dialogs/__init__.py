"""The platform-neutral dialog engine, the dialogs and the tool catalogue."""

from __future__ import annotations

from dialogs.engine import Dialog


def all_dialogs(*, catalogue_file: str | None = None, public_url: str = "http://127.0.0.1:3978") -> list[Dialog]:
    """A fresh instance of every dialog Baton offers, in the order `help` lists them.

    `catalogue_file` is an organisation's own tool catalogue (added to or overriding the shipped one);
    `public_url` is where people reach this Baton, for links sent in chat.
    """
    from dialogs.checkin import CheckinDialog
    from dialogs.dashboard import DashboardDialog
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
        DashboardDialog(public_url),
        SettingsDialog(),
    ]
