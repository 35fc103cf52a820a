"""A preset bulk run as a Celery task, with the people wherever the integration keeps them.

The task runs in-process (``apply``: Celery's own eager call, no broker needed),
against a real PostgreSQL ledger, which holds no people: the launched
integration names them (here Oomnitza's emulator), its credential and its
settings; each call is recorded in PostgreSQL and the mapped answers are
written back into Oomnitza.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from oomnitza_connect.cli import main
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.testing.oomnitza import OomnitzaEmulator

pytest.importorskip("celery")
pytest.importorskip("oomnitza_connect_slack")

USERS = 12
_names = itertools.count()


def ok(*args: Any, input: str | None = None) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def fleet_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server: Any
) -> Iterator[str]:
    from oomnitza_connect.distributed import app as app_module

    ledger_url = str(postgres_server.create_database(f"presets_{next(_names)}"))
    monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
    monkeypatch.setenv("OOMNITZA_CONNECT_DB", str(tmp_path / "default.db"))
    monkeypatch.setenv("OOMNITZA_CONNECT_LEDGER", ledger_url)
    for name in ("SLACK", "OOMNITZA"):
        monkeypatch.delenv(f"OOMNITZA_CONNECT_CREDENTIAL_{name}", raising=False)
    app_module.worker_config.cache_clear()  # the task reads the ledger from the environment
    yield ledger_url
    app_module.worker_config.cache_clear()


@pytest.fixture
def synced(fleet_home: str, tmp_path: Path) -> Iterator[tuple[OomnitzaEmulator, Any]]:
    """Slack synced into Oomnitza by a launched integration, recorded in PostgreSQL."""
    from oomnitza_connect_slack import vendor
    from oomnitza_connect_slack.emulator import SlackEmulator

    from oomnitza_connect.plugins import register_plugin

    with (
        register_plugin(vendor),
        SlackEmulator(users=USERS, seed=4, enforce_rate_limits=False) as slack,
        OomnitzaEmulator() as oomnitza,
    ):
        ok(
            "credentials", "add", "oomnitza", "--vendor", "oomnitza", "--kind", "api_key",
            "--token-stdin", "--header-name", "Authorization2", "--header-prefix", "",
            "--base-url", oomnitza.base_url, input=oomnitza.api_token,
        )  # fmt: skip
        ok(
            "credentials", "add", "slack", "--vendor", "slack", "--kind", "api_key",
            "--token-stdin", "--base-url", slack.base_url, input=slack.token,
        )  # fmt: skip
        integration = tmp_path / "slack.toml"
        ok("integrations", "init", "slack", "--output", integration, "--name", "slack-main")
        text = integration.read_text().replace(
            '# default_role = "Employee"', 'default_role = "Employee"'
        )
        integration.write_text(
            text + f'\n[destination]\ntype = "oomnitza"\nurl = "{oomnitza.base_url}"\n'
            'credential = "oomnitza"\n[destination.roles]\nEmployee = 25\n'
            '[destination.fields]\n"Slack User Id" = "slack_user_id"\n'
            '"Slack Title" = "slack_title"\n"Slack Deleted" = "slack_deleted"\n'
        )
        ok("integrations", "launch", integration, "--ledger", fleet_home, "--no-run")
        ok("sync", integration, "--ledger", fleet_home, "--no-pacing")
        assert len(oomnitza.users) > 0
        yield oomnitza, slack


def test_a_bulk_preset_task_reads_and_writes_people_in_the_integrations_destination(
    synced: tuple[OomnitzaEmulator, Any], fleet_home: str
) -> None:
    from oomnitza_connect.distributed.tasks import run_preset_bulk
    from oomnitza_connect.store.postgres import PostgresLedger

    oomnitza, slack = synced
    for user in oomnitza.users.values():
        user["slack_title"] = None
    outcome = run_preset_bulk.apply(
        args=("slack", "Find User By Email"), kwargs={"integration": "slack-main"}
    ).get()
    people = len(oomnitza.users)
    assert outcome["people"] == people
    assert (outcome["succeeded"], outcome["failed"]) == (people, 0), outcome["errors"]
    # The answers were mapped back onto the people in Oomnitza (PATCH).
    titles = {u["email"].lower(): u.get("slack_title") for u in oomnitza.users.values()}
    expected = {
        str(user["profile"]["email"]).lower(): user["profile"].get("title")
        for user in (slack.user(uid) for uid in slack.user_ids())
        if user and user["profile"].get("email") and user["profile"]["email"].lower() in titles
    }
    assert titles == expected
    assert sum(1 for title in titles.values() if title) >= people // 2  # not all empty
    # And every call is in the shared ledger.
    ledger = PostgresLedger(fleet_home)
    try:
        runs = list(ledger.iter_workflow_runs())
    finally:
        ledger.close()
    assert len(runs) == people
    assert {run.preset for run in runs} == {"Find User By Email"}
    assert all(run.ok for run in runs)


def test_without_an_integration_a_postgresql_ledger_has_no_people_to_run_for(
    fleet_home: str,
) -> None:
    from oomnitza_connect_slack import vendor

    from oomnitza_connect.distributed.tasks import run_preset_bulk
    from oomnitza_connect.plugins import register_plugin

    with register_plugin(vendor), pytest.raises(ConfigurationError, match="holds no people"):
        run_preset_bulk.apply(args=("slack", "Find User By Email", "slack")).get()


def test_the_integration_must_be_the_presets_vendor(
    synced: tuple[OomnitzaEmulator, Any],
) -> None:
    from oomnitza_connect_intercom import vendor

    from oomnitza_connect.distributed.tasks import run_preset_bulk
    from oomnitza_connect.plugins import register_plugin

    preset = vendor.presets[0].name if vendor.presets else "Get Admin"
    with register_plugin(vendor), pytest.raises(ConfigurationError, match="is for slack"):
        run_preset_bulk.apply(args=("intercom", preset), kwargs={"integration": "slack-main"}).get()
