"""The yardstick: what a user would write instead of adopting the SDK.

``requests.Session``, ``limit=1000``, ``response.json()``, then one ``sqlite3``
``executemany`` of ``INSERT ... ON CONFLICT(id) DO UPDATE`` per page into a
9-column table. Run against the benchmark page server; a second run on the same
file is its re-sync (it rewrites every row).

    python benchmarks/yardstick.py --base-url http://127.0.0.1:PORT/api --db users.db
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys

import requests

UPSERT = """
INSERT INTO users (id, name, email, first_name, last_name, title, phone, is_admin, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET
    name = excluded.name, email = excluded.email, first_name = excluded.first_name,
    last_name = excluded.last_name, title = excluded.title, phone = excluded.phone,
    is_admin = excluded.is_admin, updated = excluded.updated
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()

    db = sqlite3.connect(args.db)
    db.execute(
        "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, name TEXT, email TEXT, "
        "first_name TEXT, last_name TEXT, title TEXT, phone TEXT, is_admin INTEGER, "
        "updated INTEGER)"
    )
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {args.token}"
    cursor = ""
    members = 0
    while True:
        response = session.get(
            f"{args.base_url}/users.list", params={"limit": 1000, "cursor": cursor}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        if not body.get("ok"):
            raise SystemExit(f"Slack error: {body.get('error')}")
        rows = []
        for member in body["members"]:
            profile = member.get("profile") or {}
            rows.append(
                (
                    member["id"],
                    member.get("name"),
                    profile.get("email"),
                    profile.get("first_name"),
                    profile.get("last_name"),
                    profile.get("title"),
                    profile.get("phone"),
                    member.get("is_admin"),
                    member.get("updated"),
                )
            )
        with db:
            db.executemany(UPSERT, rows)
        members += len(rows)
        cursor = (body.get("response_metadata") or {}).get("next_cursor") or ""
        if not cursor:
            break
    print(json.dumps({"records": members, "rows_written": db.total_changes}))
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
