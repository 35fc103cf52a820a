"""The rate budget a vendor plan grants: in the integration file, on the command line."""

from __future__ import annotations

import pytest
import requests
from http_support import STATIC_TOKEN, DirectoryEmulator, Recorder

from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import AuthKind, Credential, IntegrationSettings, RateBudget
from oomnitza_connect.sync.engine import client_options
from oomnitza_connect.sync.integrations import check_integration
from oomnitza_connect.transport.http import ClientOptions, HttpClient
from oomnitza_connect.transport.ratelimit import merge_budgets, parse_rate_budget


@pytest.mark.parametrize(
    ("text", "budget"),
    [
        ("users.list=100/5", RateBudget("users.list", 100.0, burst=5)),
        (" *=600 ", RateBudget("*", 600.0, burst=1)),
        ("team.accessLogs = 2.5 / 1", RateBudget("team.accessLogs", 2.5, burst=1)),
    ],
)
def test_a_rate_budget_reads_as_endpoint_per_minute_and_burst(
    text: str, budget: RateBudget
) -> None:
    assert parse_rate_budget(text) == budget


@pytest.mark.parametrize("text", ["users.list", "users.list=0", "=5", "users.list=fast", "a=5/0"])
def test_a_bad_rate_budget_names_the_key_and_the_format(text: str) -> None:
    with pytest.raises(ConfigurationError, match="bad rate budget") as raised:
        parse_rate_budget(text, key_path="--rate-budget")
    assert raised.value.key_path == "--rate-budget"
    assert "ENDPOINT=PER_MINUTE[/BURST]" in str(raised.value)


def test_overrides_replace_the_declared_budget_of_their_endpoint_and_add_new_ones() -> None:
    declared = (RateBudget("users.list", 20, burst=3), RateBudget("users.info", 100, burst=10))
    merged = merge_budgets(
        declared,
        (
            RateBudget("users.list", 100, burst=5),
            RateBudget("*", 600),
            RateBudget("users.list", 200),
        ),
    )
    assert merged == (
        RateBudget("users.list", 200),
        RateBudget("users.info", 100, burst=10),
        RateBudget("*", 600),
    )


class BearerAuth(requests.auth.AuthBase):
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {STATIC_TOKEN}"
        return request


def test_the_client_paces_to_the_overriding_budget() -> None:
    sleep = Recorder()
    with DirectoryEmulator() as emulator:
        client = HttpClient(
            "directory",
            emulator.base_url,
            auth=BearerAuth(),
            sleep=sleep,
            # The plugin says 6 a minute (10 s apart); the plan grants 60.
            rate_budgets=(RateBudget("echo", 6, burst=1),),
            options=ClientOptions(rate_budgets=(RateBudget("echo", 60, burst=1),)),
        )
        with client:
            client.get_json("/echo", endpoint="echo")
            client.get_json("/echo", endpoint="echo")
    assert client.rate_budgets == (RateBudget("echo", 60, burst=1),)
    assert len(sleep.waits) == 1
    assert 1.0 <= sleep.waits[0] <= 1.2  # 60/min less the safety margin, not 10 s


def _settings(**changes: object) -> IntegrationSettings:
    return IntegrationSettings(
        name="directory-main",
        vendor="directory",
        credential="c",
        **changes,  # type: ignore[arg-type]
    )


CREDENTIAL = Credential(
    name="c", vendor="directory", kind=AuthKind.API_KEY, token=STATIC_TOKEN,
    base_url="https://directory.example.com",
)  # fmt: skip


def test_a_run_is_paced_by_default_with_the_plugins_budgets() -> None:
    options = client_options(_settings(), CREDENTIAL)
    assert options.pace_requests
    assert options.rate_budgets == ()
    assert options.base_url == "https://directory.example.com"


def test_the_integration_file_and_then_the_command_line_set_the_budgets() -> None:
    settings = _settings(rate_budgets=("users=100/5", "*=600"))
    assert client_options(settings, CREDENTIAL).rate_budgets == (
        RateBudget("users", 100, burst=5),
        RateBudget("*", 600),
    )
    command_line = ClientOptions(rate_budgets=(RateBudget("users", 1000, burst=10),))
    chosen = client_options(settings, CREDENTIAL, command_line)
    # The command line's comes last, so it wins for its endpoint.
    assert merge_budgets((), chosen.rate_budgets) == (
        RateBudget("users", 1000, burst=10),
        RateBudget("*", 600),
    )


def test_pacing_is_off_when_the_file_or_the_command_line_says_so() -> None:
    assert not client_options(_settings(pace_requests=False), CREDENTIAL).pace_requests
    off = ClientOptions(pace_requests=False)
    assert not client_options(_settings(), CREDENTIAL, off).pace_requests


def test_a_bad_budget_in_the_integration_is_a_problem_naming_its_key(tmp_path) -> None:
    from sync_support import INTEGRATION_TOML, AcmePlugin

    from oomnitza_connect.plugins import register_plugin, vendor_info
    from oomnitza_connect.sync.integrations import load_integration

    path = tmp_path / "acme.toml"
    path.write_text(
        INTEGRATION_TOML.replace(
            "[settings]", 'rate_budgets = ["users=100/5", "users=lots"]\n\n[settings]'
        )
    )
    with register_plugin(AcmePlugin(per_page=10), name="acme-test"):
        with pytest.raises(ConfigurationError, match="bad rate budget 'users=lots'") as raised:
            load_integration(path)
        good = load_integration(
            path.write_text(path.read_text().replace(', "users=lots"', "")) and path
        )
        assert good.rate_budgets == ("users=100/5",)
        assert check_integration(good, vendor_info("acme")) == []
    assert raised.value.file == str(path)
    assert raised.value.key_path == "rate_budgets[1]"
