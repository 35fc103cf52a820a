"""The store interface the sync engine and presets write through.

The embedded default is SQLite; an Oomnitza REST API sink can implement the
same interface. Sync-specific methods (batched upserts, sessions) are defined
next to these by the sync engine's work.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from typing import Any

from ..models import Person, SaasUser, WorkflowRun

__all__ = ["Store"]


class Store(abc.ABC):
    """A system of record for people and their SaaS accounts."""

    # -- people ---------------------------------------------------------------

    @abc.abstractmethod
    def get_person(self, person_id: int) -> Person | None:
        """Return the person with store id *person_id*."""

    @abc.abstractmethod
    def find_person(self, field: str, value: Any) -> Person | None:
        """Return the person whose *field* equals *value* (``email``, ``Slack User Id``)."""

    @abc.abstractmethod
    def iter_people(self, *, vendor: str | None = None) -> Iterator[Person]:
        """Yield people, optionally only those linked to *vendor*, without loading all at once."""

    @abc.abstractmethod
    def update_person_fields(self, person_id: int, fields: Mapping[str, Any]) -> None:
        """Set *fields* on a person (custom fields are defined on first use)."""

    # -- SaaS users -----------------------------------------------------------

    @abc.abstractmethod
    def iter_saas_users(self, *, vendor: str | None = None) -> Iterator[SaasUser]:
        """Yield SaaS users, optionally of one vendor."""

    @abc.abstractmethod
    def update_saas_user_fields(
        self, vendor: str, vendor_user_id: str, fields: Mapping[str, Any]
    ) -> None:
        """Set *fields* on one vendor account."""

    # -- workflow runs --------------------------------------------------------

    @abc.abstractmethod
    def record_workflow_run(self, run: WorkflowRun) -> None:
        """Keep the record of one preset call."""

    @abc.abstractmethod
    def iter_workflow_runs(
        self, *, vendor: str | None = None, preset: str | None = None
    ) -> Iterator[WorkflowRun]:
        """Yield recorded preset calls, newest first."""

    # -- life cycle -----------------------------------------------------------

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's resources."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
