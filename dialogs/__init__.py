"""Everything platform-neutral above the database, in four layers (each imports only those below it):

- `services/` — the scheduler's rhythm, the overview, account linking
- the conversations, one dialog per module: `checkin`, `feedback`, `goals`, `leave`, `oneonone`, `retro`, `review360`,
  `settings`, `signin`, `team`, `tools`
- `common/` and `catalogue/` — shared helpers, and the tool catalogue with its offline text scorer
- `engine/` — the framework every dialog runs on

`all_dialogs()` is the one list of conversations Baton offers.
"""

from __future__ import annotations

from dialogs.engine import Dialog


def all_dialogs(
    *, catalogue_file: str | None = None, public_url: str = "http://127.0.0.1:3978", private_calendars: bool = False
) -> list[Dialog]:
    """A fresh instance of every dialog Baton offers, in the order `help` lists them.

    `catalogue_file` is an organisation's own tool catalogue (added to or overriding the shipped one);
    `public_url` is where people reach this Baton, for links sent in chat; `private_calendars` accepts
    calendar addresses on private networks (BATON_CALENDAR_PRIVATE_HOSTS).
    """
    from dialogs.checkin import CheckinDialog
    from dialogs.feedback import FeedbackDialog, KudosDialog, RequestDialog
    from dialogs.goals import GoalsDialog
    from dialogs.ideas import IdeasDialog
    from dialogs.leave import LeaveDialog
    from dialogs.oneonone import OneOnOneDialog
    from dialogs.retro import RetroDialog
    from dialogs.review360 import Review360Dialog
    from dialogs.settings import SettingsDialog
    from dialogs.signin import SignInDialog
    from dialogs.team import TeamDialog
    from dialogs.tools import ToolsDialog

    return [
        CheckinDialog(),
        GoalsDialog(),
        OneOnOneDialog(public_url),
        FeedbackDialog(),
        RequestDialog(),
        KudosDialog(),
        ToolsDialog(catalogue_file),
        Review360Dialog(),
        RetroDialog(),
        IdeasDialog(),
        LeaveDialog(private_calendars),
        TeamDialog(),
        SignInDialog(public_url),
        SettingsDialog(),
    ]
