"""Destinations: the systems of record a sync writes people into.

``sqlite`` is the embedded default (:class:`~oomnitza_connect.store.sqlite.SQLiteStore`,
which is also the local ledger); ``oomnitza`` is Oomnitza's REST API
(:class:`~oomnitza_connect.destinations.oomnitza.OomnitzaDestination`). An
integration names its destination in a ``[destination]`` table; the CLI and
:func:`open_destination` read the same table.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from ..errors import ConfigurationError
from ..models import Credential, DestinationKind, DestinationSettings
from ..store.base import Destination, Ledger

__all__ = ["destination_problems", "open_destination"]

_SQLITE_KEYS = frozenset({"type", "path"})


def destination_problems(settings: DestinationSettings) -> list[tuple[str, str]]:
    """Return ``(key path, problem)`` pairs for a ``[destination]`` table."""
    from ..transport.http import base_url_problem  # requests: only when a table is checked

    problems: list[tuple[str, str]] = []
    if settings.type == DestinationKind.SQLITE:
        if not settings.path:
            problems.append(("destination.path", "a sqlite destination needs the file's path"))
        # A key only Oomnitza reads would be ignored here: say so rather than drop it.
        for field in attrs.fields(DestinationSettings):
            default = field.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                default = default.factory()  # type: ignore[union-attr]
            if field.name not in _SQLITE_KEYS and getattr(settings, field.name) != default:
                problems.append(
                    (
                        f"destination.{field.name}",
                        "only an oomnitza destination has this key; a sqlite one has "
                        + ", ".join(sorted(_SQLITE_KEYS)),
                    )
                )
        return problems
    if settings.type != DestinationKind.OOMNITZA:
        kinds = ", ".join(kind.value for kind in DestinationKind)
        return [("destination.type", f"bad value {settings.type!r} (allowed: {kinds})")]
    if settings.path is not None:
        problems.append(
            ("destination.path", "only a sqlite destination has a path; oomnitza has a url")
        )
    if not isinstance(settings.timeout, int | float) or not settings.timeout > 0:
        problems.append(
            ("destination.timeout", f"{settings.timeout!r} is not a positive number of seconds")
        )
    if not settings.url:
        problems.append(
            ("destination.url", "an oomnitza destination needs the instance URL (https://...)")
        )
    elif (url_problem := base_url_problem(settings.url)) is not None:
        # The same check as a vendor's base_url: a prefix test would let
        # http://localhost.example.com or http://127.0.0.1@example.com through.
        problems.append(("destination.url", url_problem))
    if not settings.credential:
        problems.append(
            ("destination.credential", "an oomnitza destination needs a stored credential's name")
        )
    if not 1 <= settings.batch_size <= 100:
        problems.append(("destination.batch_size", f"{settings.batch_size} is not 1 to 100"))
    if not 1 <= settings.test_run_batch_size <= 100:
        problems.append(
            ("destination.test_run_batch_size", f"{settings.test_run_batch_size} is not 1 to 100")
        )
    if settings.concurrency < 1:
        problems.append(("destination.concurrency", f"{settings.concurrency} is less than 1"))
    return problems


def open_destination(
    settings: DestinationSettings,
    *,
    ledger: Ledger | None = None,
    credential: Credential | None = None,
    person_fields: Iterable[str] = (),
    sync_key: str | None = None,
) -> Destination:
    """Open the destination a ``[destination]`` table names.

    :param ledger: the run's ledger; a ``sqlite`` destination at the ledger's
        own file is the ledger itself.
    :param credential: Oomnitza's credential; looked up by name when omitted.
    :param person_fields: the person fields people are read back under
        (:meth:`~oomnitza_connect.connectors.Connector.person_fields`); Oomnitza
        keeps custom fields by external id, SQLite by these names already.
    :param sync_key: the integration's sync key (a target key), which people read
        back from Oomnitza give as ``Person.sync_key``; its username otherwise.
    :raises ConfigurationError: the table is incomplete or the credential is missing.
    """
    problems = destination_problems(settings)
    if len(problems) == 1:
        key, message = problems[0]
        raise ConfigurationError(message, key_path=key)
    if problems:
        # Every problem at once, so a user fixes the table in one go.
        raise ConfigurationError(
            f"the [destination] table has {len(problems)} problems",
            key_path="destination",
            problems=[f"key '{key}': {message}" for key, message in problems],
        )
    if settings.type == DestinationKind.SQLITE:
        from ..store.sqlite import SQLiteStore

        assert settings.path is not None
        if isinstance(ledger, SQLiteStore) and _same_file(ledger.path, settings.path):
            return ledger
        return SQLiteStore(settings.path)
    from .oomnitza import OomnitzaDestination

    if credential is None:
        from ..auth.credentials import resolve_credential

        assert settings.credential is not None
        credential = resolve_credential(settings.credential)
    return OomnitzaDestination(settings, credential, person_fields=person_fields, sync_key=sync_key)


def _same_file(one: str, other: str) -> bool:
    from pathlib import Path

    if ":memory:" in (one, other):
        return False
    return Path(one).resolve() == Path(other).resolve()
