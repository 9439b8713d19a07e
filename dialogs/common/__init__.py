"""Helpers several dialogs and services share; they never import a dialog.

- `periods` — time in a person's zone, ISO-week periods, a team's weekly rhythm
- `manners` — quiet hours, leave and the weekly budget for what Baton sends on its own
- `wording` — small helpers for what people type and what Baton shows back
- `signals` — what check-ins and goals hint about a gap, for "which tool helps?"
"""
