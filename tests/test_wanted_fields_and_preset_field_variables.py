"""Two small contracts plugins build on.

* The sync engine tells the vendor session which record fields its mapping and
  filters read (``VendorSession.wanted_fields``), so a plugin can leave out what
  costs extra (Intercom's avatars).
* A preset's ``variable_fields`` read a variable from a person field when the
  caller does not give it (Intercom's ``{{intercom_admin_id}}`` from ``Intercom ID``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

from oomnitza_connect.hookspecs import hookimpl
from oomnitza_connect.models import FieldMapping, Person, Preset
from oomnitza_connect.plugins import register_plugin, vendor_info
from oomnitza_connect.presets.engine import field_variables
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.sync.mapping import fields_read
from oomnitza_connect.vendors.session import VendorSession


def test_fields_read_collects_sources_expressions_and_filters() -> None:
    mapping = (
        FieldMapping(target="email", source="email", converter="lower"),
        FieldMapping(target="full_name", expression="{{ first }} {{ last | upper }}"),
    )
    assert fields_read(mapping, ("not is_bot", "team == 'x'")) == {
        "email",
        "first",
        "last",
        "is_bot",
        "team",
    }
    assert fields_read(mapping) == {"email", "first", "last"}


@pytest.mark.parametrize("reads_everything", ["{{ raw.avatar }}", "{{ fields['x'] }}"])
def test_an_expression_reading_raw_or_fields_wants_every_field(reads_everything) -> None:
    mapping = (FieldMapping(target="x", expression=reads_everything),)
    assert fields_read(mapping) is None
    assert fields_read((), ("raw.deleted",)) is None


class _SeesWantedFields:
    def __init__(self) -> None:
        self.seen: list[frozenset[str] | None] = []

    @hookimpl(wrapper=True)
    def list_users(self, vendor: str, session: VendorSession) -> Iterator[object]:
        self.seen.append(session.wanted_fields)
        return (yield)


def test_the_sync_engine_sets_the_sessions_wanted_fields(tmp_path) -> None:
    watcher = _SeesWantedFields()
    with (
        register_plugin(AcmePlugin(per_page=7), name="acme-test"),
        register_plugin(watcher, name="wanted-fields-watcher"),
        AcmeEmulator(users=5) as emulator,
        SQLiteStore(tmp_path / "sync.db") as store,
    ):
        settings = load_integration(write_integration(tmp_path, base_url=emulator.base_url))
        run_sync(settings, credential=credential(), store=store)
        info = vendor_info("acme")
    (wanted,) = watcher.seen
    assert wanted is not None
    expected = fields_read(
        (*settings.mapping, *info.standard_mapping), settings.filters or info.default_filters
    )
    assert expected
    assert expected <= wanted | {"sync_time"}
    assert "mail" in wanted  # acme's email field


def _person(**fields) -> Person:
    return Person(id=1, sync_key="email", sync_value="a@example.com", fields=fields,
                  created_at=datetime.now(UTC))  # fmt: skip


PRESET = Preset(
    vendor="acme",
    name="Read",
    description="Read one admin",
    method="GET",
    path="/admins/{{admin_id}}",
    variables=("admin_id",),
    variable_fields={"admin_id": "Acme ID", "team": "Position"},
)


def test_preset_field_variables_read_the_persons_fields() -> None:
    person = _person(**{"Acme ID": "991", "position": "Lead"})
    # A custom field by its label, a standard one by its label too (Position -> position).
    assert field_variables(PRESET, person) == {"admin_id": "991", "team": "Lead"}
    assert field_variables(PRESET, _person(**{"Acme ID": ""})) == {}
    assert field_variables(PRESET, None) == {}
