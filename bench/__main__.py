"""`python -m bench [NAME ...]` (or `make bench`): run the benchmarks and print their ratios."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from bench import (
    calendar_feeds,
    checkin_tick,
    faults,
    oneonones,
    outbound_limit,
    seal_360,
    slack_inbound,
    slack_outbound,
    teams_turn,
)

BENCHES = {
    "checkin-tick": checkin_tick.main,
    "slack-inbound": slack_inbound.main,
    "slack-outbound": slack_outbound.main,
    "outbound-limit": outbound_limit.main,
    "teams-turn": teams_turn.main,
    "seal-360": seal_360.main,
    "faults": faults.main,
    "calendar-feeds": calendar_feeds.main,
    "oneonones": oneonones.main,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHES, []], help="which benchmarks (default: all)")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--postgres", default=None, help="also run against this PostgreSQL URL (default: BATON_TEST_DATABASE_URL)"
    )
    args = parser.parse_args()
    # The servers the benchmarks start seal anonymous answers; with PostgreSQL they need a secret.
    os.environ.setdefault("BATON_SECRET_KEY", secrets.token_urlsafe(48))
    results = {}
    for name in args.names or BENCHES:
        print(f"== {name}", file=sys.stderr, flush=True)
        results[name] = asyncio.run(BENCHES[name](args))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
