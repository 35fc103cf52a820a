"""The Python API for scripts and notebooks, as imported from the package."""

from __future__ import annotations

import sys

import pytest
from sync_support import AcmeEmulator, AcmePlugin, credential, write_integration

import oomnitza_connect as oc
import oomnitza_connect.plugins
from oomnitza_connect.api import to_rows


@pytest.fixture
def acme():
    with register(), AcmeEmulator(users=9) as emulator:
        yield emulator


def register():
    return oc.plugins.register_plugin(AcmePlugin(per_page=4), name="acme-test")


def test_list_users_streams_records(acme):
    records = list(oc.list_users("acme", credential(acme.base_url), {"Acme.Tenant": "t"}))
    assert [r.id for r in records] == [f"A{i:06d}" for i in range(1, 10)]
    assert records[0].fields["login"] == "user1"


def test_list_users_takes_an_integration_for_its_base_url(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    first = next(oc.list_users(oc.get_connector("acme"), credential(), settings))
    assert first.fields["mail"] == "User1@Example.com"


def test_run_sync_and_read_back_through_open_store(tmp_path, acme):
    settings = oc.load_integration(write_integration(tmp_path, base_url=acme.base_url))
    with oc.open_store(tmp_path / "api.db") as store:
        session = oc.run_sync(settings, credential=credential(), store=store)
        assert session.status.value == "succeeded"
        assert [s.id for s in store.list_sessions()] == [session.id]
        people = list(store.iter_people(vendor="acme"))
    assert len(people) == 9
    rows = list(to_rows(people))
    assert rows[0]["email"] == "user1@example.com"
    assert rows[0]["sync_key"] == "email"
    session_row = next(to_rows([session]))
    assert (session_row["created"], session_row["status"]) == (9, "succeeded")


def test_open_store_defaults_to_oomnitza_connect_home(tmp_path, monkeypatch):
    monkeypatch.delenv("OOMNITZA_CONNECT_DB", raising=False)
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path))
    with oc.open_store() as store:
        assert store.path == str(tmp_path / "oomnitza-connect.db")
    monkeypatch.setenv("OOMNITZA_CONNECT_DB", str(tmp_path / "elsewhere.db"))
    assert oc.default_db_path() == tmp_path / "elsewhere.db"


def test_to_dataframe_needs_the_pandas_extra(monkeypatch):
    records = [oc.VendorRecord(vendor="acme", id="1", fields={"login": "a"})]
    # A None entry in sys.modules makes `import pandas` fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(oc.MissingExtraError, match=r"pip install oomnitza-connect\[pandas\]"):
        oc.to_dataframe(records)


def test_records_become_dataframes():
    # pandas is in the dev dependencies, so this runs the real conversion.
    records = [
        oc.VendorRecord(vendor="acme", id="1", fields={"login": "a", "mail": "a@x.test"}),
        oc.VendorRecord(vendor="acme", id="2", fields={"login": "b", "mail": "b@x.test"}),
    ]
    frame = oc.to_dataframe(records)
    assert list(frame["id"]) == ["1", "2"]
    assert list(frame["login"]) == ["a", "b"]
    assert set(frame["vendor"]) == {"acme"}


def test_suggest_mapping_is_exported(acme):
    assert {s.source: s.target for s in oc.suggest_mapping("acme")}["mail"] == "email"
