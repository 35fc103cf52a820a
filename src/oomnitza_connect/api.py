"""The Python API for scripts and notebooks.

>>> import oomnitza_connect as oc
>>> cred = oc.Credential(name="slack", vendor="slack", kind=oc.AuthKind.API_KEY, token="xoxb-…")
>>> users = list(oc.list_users("slack", cred))               # VendorRecord objects
>>> settings = oc.load_integration("slack.toml")
>>> with oc.open_store() as store:
...     session = oc.run_sync(settings, credential=cred, store=store)
...     people = oc.to_dataframe(store.iter_people(vendor="slack"))   # needs pandas

Everything here is also importable from :mod:`oomnitza_connect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .connectors import Connector, get_connector
from .errors import MissingExtraError
from .models import Credential, IntegrationSettings, Person, SyncSession, VendorRecord
from .store.paths import default_db_path
from .store.sqlite import SQLiteStore
from .sync.engine import SyncProgress, run_sync
from .sync.integrations import draft_problems, load_integration
from .sync.smart_mapping import MappingSuggestion, suggest_mapping
from .transport.http import ClientOptions

__all__ = [
    "MappingSuggestion",
    "MissingExtraError",
    "SyncProgress",
    "default_db_path",
    "draft_problems",
    "list_users",
    "load_integration",
    "open_store",
    "run_sync",
    "suggest_mapping",
    "to_dataframe",
    "to_rows",
]


def open_store(path: str | Path | None = None) -> SQLiteStore:
    """Open the SQLite store at *path* (default: :func:`default_db_path`).

    Use it as a context manager, or call ``close()`` when done.
    """
    return SQLiteStore(path if path is not None else default_db_path())


def list_users(
    vendor: str | Connector,
    credential: Credential,
    settings: IntegrationSettings | Mapping[str, str] | None = None,
    *,
    options: ClientOptions | None = None,
) -> Iterator[VendorRecord]:
    """Yield a vendor's users as records, fetching pages as you iterate.

    :param vendor: a connector name (``"slack"``) or a :class:`Connector`.
    :param credential: the credential to authenticate with.
    :param settings: the vendor's global settings, or a whole integration
        (whose settings and ``base_url`` are used).
    :param options: HTTP options (timeouts, base URL override).
    """
    connector = get_connector(vendor) if isinstance(vendor, str) else vendor
    global_settings: Mapping[str, str] = {}
    base_url = credential.base_url
    if isinstance(settings, IntegrationSettings):
        global_settings = settings.settings
        base_url = settings.base_url or base_url
    elif settings is not None:
        global_settings = settings
    session = connector.authenticate(
        credential, global_settings, options=options or ClientOptions(base_url=base_url)
    )
    with session:
        yield from connector.list_users(session)


def to_rows(items: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Flatten records, people, SaaS users, sessions or mappings into plain dicts."""
    for item in items:
        yield _row(item)


def _row(item: Any) -> dict[str, Any]:
    if isinstance(item, VendorRecord):
        return {"vendor": item.vendor, "id": item.id, **item.fields}
    if isinstance(item, Person):
        row: dict[str, Any] = {
            "id": item.id,
            "sync_key": item.sync_key,
            "sync_value": item.sync_value,
        }
        row.update(item.fields)
        row["vanished_from"] = ", ".join(item.vanished_from)
        row["created_at"] = item.created_at
        row["updated_at"] = item.updated_at
        return row
    if isinstance(item, SyncSession):
        row = {
            "id": item.id,
            "integration": item.integration,
            "vendor": item.vendor,
            "status": item.status.value,
            "test_run": item.test_run,
            "started_at": item.started_at,
            "ended_at": item.ended_at,
        }
        row.update(attrs.asdict(item.counts))
        row["errors"] = len(item.errors)
        row["message"] = item.message
        return row
    if isinstance(item, Mapping):
        return dict(item)
    if attrs.has(type(item)):
        flat: dict[str, Any] = {}
        for name, value in attrs.asdict(item, recurse=False).items():
            if isinstance(value, Mapping):
                flat.update(value)
            else:
                flat[name] = value
        return flat
    return {"value": item}


def to_dataframe(items: Iterable[Any]) -> Any:
    """Return *items* (records, people, sessions, dicts) as a pandas DataFrame.

    :raises MissingExtraError: pandas is not installed; install the extra with
        ``pip install oomnitza-connect[pandas]``.
    """
    try:
        import pandas
    except ImportError:
        raise MissingExtraError(
            "to_dataframe needs pandas, which is not installed; "
            "install it with: pip install oomnitza-connect[pandas]"
        ) from None
    return pandas.DataFrame.from_records(list(to_rows(items)))
