"""Where ``people`` and ``presets run`` find people: the store, or Oomnitza.

By default people are in the local SQLite store (``--db``). An integration
file whose ``[destination]`` table names Oomnitza, or ``--oomnitza
CREDENTIAL`` (with ``--oomnitza-url`` when the credential carries no URL),
reads them from Oomnitza instead (``GET /api/v3/users``) and writes preset
results back there (``PATCH /api/v3/users/{ident}``); the store then only
records the preset calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import click

from ..errors import ConfigurationError
from ..models import Credential, DestinationKind, DestinationSettings
from .store_option import open_store

if TYPE_CHECKING:
    from ..store.base import Destination, Store

__all__ = ["chosen_destination", "oomnitza_options", "open_people"]

F = TypeVar("F", bound=Callable[..., Any])


def oomnitza_options(func: F) -> F:
    """Add ``--oomnitza CREDENTIAL`` and ``--oomnitza-url URL`` to a command."""
    func = click.option(
        "--oomnitza-url",
        metavar="URL",
        default=None,
        help="The Oomnitza instance for --oomnitza (default: the credential's base URL).",
    )(func)
    return click.option(
        "--oomnitza",
        "oomnitza_credential",
        metavar="CREDENTIAL",
        default=None,
        help="Read (and write back) people in Oomnitza with this stored credential "
        "instead of the store.",
    )(func)


def chosen_destination(
    table: DestinationSettings | None,
    oomnitza_credential: str | None,
    oomnitza_url: str | None,
) -> tuple[DestinationSettings | None, Credential | None]:
    """The destination the options name: ``--oomnitza`` wins over an integration's table.

    An integration's Oomnitza table keeps its ``fields`` and ``roles`` when
    ``--oomnitza`` only changes the instance or the credential.
    """
    if oomnitza_credential is None:
        if oomnitza_url is not None:
            raise click.UsageError("--oomnitza-url needs --oomnitza CREDENTIAL.")
        return table, None
    from ..auth.credentials import OOMNITZA_VENDOR, resolve_credential

    credential = resolve_credential(oomnitza_credential)
    if credential.vendor != OOMNITZA_VENDOR:
        raise ConfigurationError(
            f"the credential '{credential.name}' is for {credential.vendor}, not oomnitza",
            key_path="--oomnitza",
        )
    url = oomnitza_url or credential.base_url
    if not url:
        raise click.UsageError(
            f"the credential '{credential.name}' has no base URL; give --oomnitza-url."
        )
    if table is not None and table.type == DestinationKind.OOMNITZA:
        table = attrs.evolve(table, url=url, credential=credential.name)
    else:
        table = DestinationSettings(
            type=DestinationKind.OOMNITZA, url=url, credential=credential.name
        )
    return table, credential


@contextmanager
def open_people(
    db_path: Path | None,
    table: DestinationSettings | None,
    credential: Credential | None = None,
    *,
    must_exist: bool = False,
    need_ledger: bool = True,
    person_fields: Iterable[str] = (),
    sync_key: str | None = None,
) -> Iterator[tuple[Destination, Store | None]]:
    """Open ``(people, ledger)``: the store for both, or a destination and the store.

    :param need_ledger: open the store even when people live elsewhere (a
        preset run records its calls there).
    :param person_fields: the names people's fields are read back under
        (Oomnitza keeps custom fields by external id).
    """
    from ..destinations import open_destination

    with ExitStack() as stack:
        if table is None:
            store = stack.enter_context(open_store(db_path, must_exist=must_exist))
            yield store, store
            return
        ledger = None
        if need_ledger:
            ledger = stack.enter_context(open_store(db_path, must_exist=must_exist))
        people = open_destination(
            table,
            ledger=ledger,
            credential=credential,
            person_fields=person_fields,
            sync_key=sync_key,
        )
        if people is not ledger:
            stack.callback(people.close)
        yield people, ledger
