"""The framework every dialog runs on: the public surface a dialog author imports.

- `contract` — `Dialog`, `State`, `Turn`, `Role`, `END`: what a dialog is
- `routing` — which handler a message reaches (`help`, `cancel`, buttons, commands)
- `turns` — `Engine`: turns in transactions, many at once (group commit)
- `messages` — the neutral types that cross the adapter boundary (`Inbound`, `Reply`, …)
- `delivery` — the contract platforms implement to send (`Delivery`, `Outgoing`, `DeliveryError`)
- `inbox` — deliveries acknowledged before their turn ran, kept until it commits
- `feed` — what a person was delivered on the local channel (web chat, terminal)
- `clock`, `locks`, `errors` — time and zones, per-key locks, the exception tree
"""

from __future__ import annotations

from dialogs.engine.contract import COMMAND_ACTION, END, Dialog, Role, State, Transition, Turn
from dialogs.engine.turns import Engine

__all__ = ["COMMAND_ACTION", "END", "Dialog", "Engine", "Role", "State", "Transition", "Turn"]
