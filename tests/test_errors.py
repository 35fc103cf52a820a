"""One base class; messages are sentences a user can act on, attributes carry the facts."""

from __future__ import annotations

import pytest

import oomnitza_connect
from oomnitza_connect import errors
from oomnitza_connect.errors import (
    AuthenticationError,
    ConfigurationError,
    MappingError,
    OomnitzaConnectError,
    PaginationError,
    PluginError,
    PresetError,
    RateLimitError,
    StoreError,
    TransportError,
    UnknownVendorError,
    VendorAPIError,
)


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_derives_from_the_one_base_and_is_exported(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, OomnitzaConnectError)
    assert getattr(oomnitza_connect, name) is cls


def test_configuration_error_names_file_key_and_allowed_values() -> None:
    error = ConfigurationError(
        "bad value 'weekly-ish'",
        file="integrations/slack.toml",
        key_path="schedule",
        value="weekly-ish",
        allowed="daily, hourly or a cron expression",
    )
    assert str(error) == (
        "integrations/slack.toml: key 'schedule': bad value 'weekly-ish' "
        "(allowed: daily, hourly or a cron expression)"
    )
    assert (error.file, error.key_path, error.value) == (
        "integrations/slack.toml",
        "schedule",
        "weekly-ish",
    )


def test_configuration_error_lists_several_problems() -> None:
    error = ConfigurationError("2 problems", file="a.toml", problems=["one", "two"])
    assert str(error) == "a.toml: 2 problems\n  - one\n  - two"
    assert error.problems == ("one", "two")


def test_vendor_api_error_carries_vendor_status_code_and_request_id() -> None:
    error = VendorAPIError(
        "The user was not found",
        vendor="intercom",
        status=404,
        code="admin_not_found",
        request_id="req-123",
        method="GET",
        endpoint="/admins/7",
    )
    assert str(error) == (
        "intercom: The user was not found on GET /admins/7 "
        "(HTTP 404, code admin_not_found, request id req-123)"
    )
    assert error.vendor_message == "The user was not found"
    assert (error.vendor, error.status, error.code, error.request_id) == (
        "intercom",
        404,
        "admin_not_found",
        "req-123",
    )


def test_slack_style_errors_have_a_code_without_a_failing_status() -> None:
    error = VendorAPIError("The token was revoked", vendor="slack", code="token_revoked")
    assert str(error) == "slack: The token was revoked (code token_revoked)"


def test_rate_limit_error_is_a_vendor_error_with_retry_after() -> None:
    error = RateLimitError(
        "Still rate limited after 6 retries", vendor="slack", status=429, retry_after=30
    )
    assert isinstance(error, VendorAPIError)
    assert error.retry_after == 30
    assert str(error) == "slack: Still rate limited after 6 retries (HTTP 429)"
    assert issubclass(PaginationError, VendorAPIError)


def test_authentication_error_message() -> None:
    error = AuthenticationError(
        "The credential 'bot' was refused", vendor="slack", code="invalid_auth"
    )
    assert str(error) == "slack: The credential 'bot' was refused (code invalid_auth)"
    assert AuthenticationError("No token was given").vendor is None


def test_transport_mapping_and_plain_errors() -> None:
    assert str(TransportError("connection refused", vendor="webex")) == "webex: connection refused"
    assert str(TransportError("connection refused")) == "connection refused"
    mapping = MappingError("'abc' is not a date", field="Last Login", value="abc")
    assert str(mapping) == "field 'Last Login': 'abc' is not a date"
    assert mapping.value == "abc"
    assert str(MappingError("no username")) == "no username"
    assert isinstance(PresetError("x"), OomnitzaConnectError)
    assert isinstance(StoreError("x"), OomnitzaConnectError)


def test_unknown_vendor_lists_the_installed_ones_sorted() -> None:
    error = UnknownVendorError("slak", ["webex", "slack"])
    assert isinstance(error, PluginError)
    assert str(error) == (
        "no connector named 'slak' is installed; did you mean 'slack'? (installed: slack, webex)"
    )
    assert error.installed == ("webex", "slack")
    assert (
        str(UnknownVendorError("x", [])) == "no connector named 'x' is installed (installed: none)"
    )


def test_unknown_vendor_in_a_file_names_the_file_key_and_allowed_ones() -> None:
    error = UnknownVendorError(
        "slak", ["webex", "slack"], file="i.toml", key_path="vendor", hint="a hint"
    )
    assert str(error) == (
        "i.toml: key 'vendor': bad value 'slak': no installed plugin provides it; "
        "did you mean 'slack'? (allowed: slack, webex); a hint"
    )
    assert (error.file, error.key_path, error.hint) == ("i.toml", "vendor", "a hint")
    # Nothing to list is said as such, not as "(allowed: none)".
    alone = UnknownVendorError("slak", [], file="i.toml", key_path="vendor")
    assert str(alone) == (
        "i.toml: key 'vendor': bad value 'slak': no installed plugin provides it "
        "(no vendor plugin is installed)"
    )
