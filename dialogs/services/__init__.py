"""Work that is not a conversation but uses several: the scheduler's rhythm, the overview, account linking.

- `rhythm` — `Conductor`: what is due each tick (check-ins, reminders, digests, nudges, 360s, follow-ups)
- `home` — a person's overview (Slack's App Home), as a neutral `Reply`
- `accounts` — platform accounts → people, shared by every adapter
"""
