"""The Webex yardstick: what a user would write instead of adopting the SDK.

``requests.Session``, ``max=1000``, ``response.json()``, the next page from the
``Link`` header (``response.links``), then one ``sqlite3`` ``executemany`` of
``INSERT ... ON CONFLICT(id) DO UPDATE`` per page into a 9-column table.

    python benchmarks/yardstick_webex.py --base-url http://127.0.0.1:PORT/v1 --db people.db
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

import requests

UPSERT = """
INSERT INTO people (id, email, display_name, first_name, last_name, title, status, org_id,
                    created)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    email = excluded.email, display_name = excluded.display_name,
    first_name = excluded.first_name, last_name = excluded.last_name, title = excluded.title,
    status = excluded.status, org_id = excluded.org_id, created = excluded.created
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    db = sqlite3.connect(args.db)
    db.execute(
        "CREATE TABLE IF NOT EXISTS people (id TEXT PRIMARY KEY, email TEXT, display_name TEXT, "
        "first_name TEXT, last_name TEXT, title TEXT, status TEXT, org_id TEXT, created TEXT)"
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.token}"
    url: str | None = f"{args.base_url}/people?max=1000"
    people = 0
    while url:
        response = session.get(url, timeout=60)
        response.raise_for_status()
        rows = []
        for person in response.json()["items"]:
            emails = person.get("emails") or [None]
            rows.append(
                (
                    person["id"],
                    emails[0],
                    person.get("displayName"),
                    person.get("firstName"),
                    person.get("lastName"),
                    person.get("title"),
                    person.get("status"),
                    person.get("orgId"),
                    person.get("created"),
                )
            )
        with db:
            db.executemany(UPSERT, rows)
        people += len(rows)
        url = response.links.get("next", {}).get("url")
    print(json.dumps({"records": people, "rows_written": db.total_changes}))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
