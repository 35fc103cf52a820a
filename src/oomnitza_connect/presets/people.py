"""Where presets find people and write mapped values back.

Presets need little from a destination: find one person (``--person EMAIL``),
walk people (``--where``, narrowed on the server where it can be), their SaaS
accounts, and write the response's mapped values back. :class:`PeopleDirectory`
is that much; both destinations implement it
(:class:`~oomnitza_connect.store.sqlite.SQLiteStore` with SQL,
:class:`~oomnitza_connect.destinations.oomnitza.OomnitzaDestination` with
``GET /api/v3/users`` and ``PATCH /api/v3/users/{ident}``). The record of each
call goes to a :class:`WorkflowLog`, the local ledger, wherever the people live.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

from ..models import Person, PersonId, SaasUser, WorkflowRun
from ..store.base import CustomField

__all__ = ["PeopleDirectory", "WorkflowLog"]


@runtime_checkable
class PeopleDirectory(Protocol):
    """Find people and write preset results back onto them (any destination)."""

    def find_person(self, field: str, value: Any) -> Person | None:
        """Return the person whose *field* equals *value*, or ``None``."""

    def iter_people(self, *, vendor: str | None = None) -> Iterator[Person]:
        """Yield people (linked to *vendor* when given) without loading all at once."""

    def iter_candidates(self, where: str) -> Iterator[Person]:
        """Yield the people who may match the ``--where`` expression *where* (a superset)."""

    def iter_saas_users(self, *, vendor: str | None = None) -> Iterator[SaasUser]:
        """Yield SaaS accounts, optionally of one vendor."""

    def update_person_fields(self, person_id: PersonId, fields: Mapping[str, Any]) -> None:
        """Write *fields* onto the person *person_id*."""

    def update_saas_user_fields(
        self, vendor: str, vendor_user_id: str, fields: Mapping[str, Any]
    ) -> None:
        """Write *fields* onto one SaaS account (a destination without them refuses)."""

    def refused_targets(self, vendor: str, targets: Iterable[str]) -> str | None:
        """Say why some of *vendor*'s preset's mapped *targets* cannot be stored, or ``None``."""

    def custom_fields(self) -> list[CustomField]:
        """Return the custom fields the destination has defined."""

    def define_custom_field(self, field: CustomField) -> None:
        """Define *field* before a value is first written to it."""


@runtime_checkable
class WorkflowLog(Protocol):
    """Where each preset call is recorded (the local ledger)."""

    def record_workflow_run(self, run: WorkflowRun) -> None:
        """Keep the record of one preset call."""
