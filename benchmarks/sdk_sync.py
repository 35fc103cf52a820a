"""The SDK side of the benchmark: one ``run_sync`` of a vendor into a SQLite store.

The vendor's standard mapping and filters, pacing off (the page server has no
rate limit), the largest page the plugin allows (``Slack.PageSize`` 999: Slack
wants a limit "under 1000"; ``Webex.PageSize`` 1000). Run it twice on the same
file for the unchanged re-sync.

    python benchmarks/sdk_sync.py --base-url http://127.0.0.1:PORT/api --db people.db
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--vendor", default="slack")
    args = parser.parse_args()

    from oomnitza_connect import AuthKind, Credential, IntegrationSettings, SQLiteStore, run_sync
    from oomnitza_connect.transport.http import ClientOptions

    # The largest page each plugin allows (Slack wants a limit "under 1000").
    page_sizes = {"slack": {"Slack.PageSize": "999"}, "webex": {"Webex.PageSize": "1000"}}
    settings = IntegrationSettings(
        name=f"bench-{args.vendor}",
        vendor=args.vendor,
        credential="bench",
        settings=page_sizes.get(args.vendor, {}),
        sync_key="email",
        default_role="Employee",
    )
    credential = Credential(
        name="bench", vendor=args.vendor, kind=AuthKind.API_KEY, token=args.token,
        base_url=args.base_url,
    )  # fmt: skip
    started = datetime.now(UTC).isoformat()
    with SQLiteStore(args.db) as store:
        session = run_sync(
            settings,
            credential=credential,
            store=store,
            options=ClientOptions(base_url=args.base_url, pace_requests=False),
        )
        written = store._db.execute(
            "SELECT count(*) FROM people WHERE updated_at >= ?", (started,)
        ).fetchone()[0]
    counts = session.counts
    print(
        json.dumps(
            {
                "status": session.status.value,
                "message": session.message,
                "records": counts.total,
                "created": counts.created,
                "updated": counts.updated,
                "unchanged": counts.unchanged,
                "skipped": counts.skipped,
                "failed": counts.failed,
                "rows_written": written,
            }
        )
    )
    return 0 if session.status.value == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
