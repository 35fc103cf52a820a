"""Every shipped preset works the same with people read from SQLite and from Oomnitza.

Each vendor's emulated account is synced (users+saas) into the SQLite store and
into the Oomnitza emulator with the same integration; then every preset runs as
a dry run (rendered, nothing sent) for every linked person read back from each.
The same people must render, and fail for the same reasons, in both: a preset
whose variable comes from a custom field (Intercom's Get Admin Details,
``Intercom ID``) must find it in Oomnitza too. The one difference allowed is
the refusal, before anything runs, of a preset that writes SaaS-user fields
Oomnitza cannot keep.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oomnitza_connect.auth.credentials import credential_env_name
from oomnitza_connect.connectors import get_connector
from oomnitza_connect.errors import PresetError
from oomnitza_connect.models import IntegrationSettings, SyncStatus
from oomnitza_connect.presets.engine import preset_targets, run_preset_bulk
from oomnitza_connect.store.sqlite import SQLiteStore
from oomnitza_connect.sync.engine import client_options, destination_of, run_sync
from oomnitza_connect.sync.integrations import load_integration
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

PLUGINS = {
    "slack": "oomnitza_connect_slack:vendor",
    "intercom": "oomnitza_connect_intercom:vendor",
    "webex": "oomnitza_connect_webex.plugin:vendor",
    "talkdesk": "oomnitza_connect_talkdesk:vendor",
}


@pytest.fixture(params=sorted(PLUGINS))
def vendor(request: pytest.FixtureRequest) -> Iterator[str]:
    from oomnitza_connect.plugins import register_plugin

    module, _, name = PLUGINS[request.param].partition(":")
    plugin = getattr(pytest.importorskip(module), name)
    with register_plugin(plugin):
        yield request.param


def integration(
    path: Path, vendor: str, emulator: Any, credential: str, destination: str
) -> IntegrationSettings:
    """The vendor's generated integration file, with users+saas and *destination*."""
    from oomnitza_connect.sync.integrations import render_integration_template

    text = render_integration_template(get_connector(vendor).info, name=f"{vendor}-both")
    text = text.replace('# default_role = "Employee"', 'default_role = "Employee"')
    text = text.replace('selection = "users"', 'selection = "users+saas"')
    text = re.sub(r'^credential = ".*"$', f'credential = "{credential}"', text, count=1, flags=re.M)
    text = text.replace(
        f'name = "{vendor}-both"',
        f'name = "{vendor}-both"\nbase_url = "{emulator.base_url}"\npace_requests = false',
    )
    settings = getattr(emulator, "test_settings", dict)()
    for key in settings:
        text = re.sub(rf'^"{re.escape(key)}"\s*=.*$', "", text, flags=re.M)
    text = text.replace(
        "[settings]\n",
        "[settings]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in settings.items()),
        1,
    )
    path.write_text(text + destination, encoding="utf-8")
    return load_integration(path)


def outcomes(settings: IntegrationSettings, credential: Any, ledger_path: Path) -> dict[str, Any]:
    """preset -> sorted (person, ok, error) of a dry run over the linked people, or its refusal."""
    connector = get_connector(settings.vendor)
    found = {}
    with SQLiteStore(ledger_path) as ledger:
        session_info = run_sync(settings, credential=credential, store=ledger)
        assert session_info.status == SyncStatus.SUCCEEDED, session_info.message
        people = destination_of(settings, ledger)
        options = client_options(settings, credential)
        try:
            with connector.authenticate(credential, settings.settings, options=options) as session:
                for preset in connector.presets():
                    try:
                        results = run_preset_bulk(
                            session,
                            preset,
                            people,
                            ledger=ledger,
                            where="true",
                            linked_only=True,
                            dry_run=True,
                        )
                    except PresetError as exc:
                        found[preset.name] = f"refused: {exc}"
                        continue
                    found[preset.name] = sorted(
                        (r.person, r.ok, _without_ids(r.error)) for r in results
                    )
                plain = next(
                    p
                    for p in connector.presets()
                    if not any(t.startswith("saas_user.") for t in preset_targets(p))
                )
                for where in WHERES:  # the same people, or the same complaint, in both
                    try:
                        chosen = run_preset_bulk(
                            session, plain, people, ledger=ledger, where=where, dry_run=True
                        )
                    except PresetError as exc:
                        found[f"where {where}"] = _without_ids(str(exc))
                        continue
                    found[f"where {where}"] = sorted(r.person for r in chosen)
        finally:
            if people is not ledger:
                people.close()
    return found


WHERES = (
    "position != 'Designer'",  # a mapped field that is empty for some people
    "first_name is none",
    "not last_name",
    "email != '' and username",
    "role == 'Employee'",
    "sync_key == 'email' and sync_value == email",  # the integration's sync key
)


def _without_ids(error: str | None) -> str | None:
    # A person's id differs between the destinations (row id, Oomnitza user_id).
    return None if error is None else re.sub(r"\bu\d{8}\b|\b\d+\b", "#", error)


def test_every_preset_renders_for_the_same_people_from_sqlite_and_oomnitza(
    vendor: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        get_connector(vendor).create_emulator(users=8, seed=4) as emulator,
        OomnitzaEmulator() as oomnitza,
    ):
        credential = emulator.test_credential(name=f"{vendor}-both")
        table = (
            f'\n[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
            'credential = "oomnitza-both"\n[destination.roles]\nEmployee = 25\n'
        )
        monkeypatch.setenv(
            credential_env_name("oomnitza-both"),
            json.dumps(
                {
                    "name": "oomnitza-both",
                    "vendor": "oomnitza",
                    "kind": "api_key",
                    "token": oomnitza.api_token,
                    "header_name": "Authorization2",
                    "header_prefix": "",
                    "base_url": oomnitza.base_url,
                }
            ),
        )
        sqlite = integration(tmp_path / "sqlite.toml", vendor, emulator, credential.name, "")
        into_oomnitza = integration(
            tmp_path / "oomnitza.toml", vendor, emulator, credential.name, table
        )
        from_sqlite = outcomes(sqlite, credential, tmp_path / "sqlite.db")
        from_oomnitza = outcomes(into_oomnitza, credential, tmp_path / "oomnitza.db")
    assert set(from_oomnitza) == set(from_sqlite)
    for name, expected in from_sqlite.items():
        if name.startswith("where "):
            assert from_oomnitza[name] == expected, name
            if "sync_key" in name:  # selects people, not a complaint both share
                assert isinstance(expected, list), expected
                assert expected, name
            continue
        preset = get_connector(vendor).preset(name)
        if any(t.startswith("saas_user.") for t in preset_targets(preset)):
            assert str(from_oomnitza[name]).startswith("refused: "), name
            assert "[destination.fields]" in from_oomnitza[name]
            continue
        assert expected, f"{name}: nobody was linked"
        assert from_oomnitza[name] == expected, name
