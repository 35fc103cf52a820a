"""The four vendors' standard mappings read email with the email converter, so an
address that is not one fails its record alone instead of becoming a sync key."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from oomnitza_connect.errors import ConversionError
from oomnitza_connect.models import IntegrationSettings
from oomnitza_connect.plugins import register_plugin, vendor_info
from oomnitza_connect.sync.converters import convert


@pytest.fixture(autouse=True)
def vendors():
    from oomnitza_connect_intercom import vendor as intercom
    from oomnitza_connect_slack import vendor as slack
    from oomnitza_connect_talkdesk import vendor as talkdesk
    from oomnitza_connect_webex.plugin import vendor as webex

    with ExitStack() as stack:
        for module in (slack, intercom, webex, talkdesk):
            stack.enter_context(register_plugin(module))
        yield


def test_the_standard_mappings_convert_email_as_an_email():
    for vendor in ("slack", "intercom", "webex", "talkdesk"):
        email = [m for m in vendor_info(vendor).standard_mapping if m.target == "email"]
        assert [m.converter for m in email] == ["email"], vendor


@pytest.mark.parametrize("bad", ["nul\x00@example.com", "not-an-email", "a b@example.com", "@x"])
def test_the_email_converter_refuses_what_is_not_an_address(bad):
    with pytest.raises(ConversionError, match="is not an email address"):
        convert("email", bad)


def test_a_bad_email_fails_its_record_alone_in_a_slack_sync(tmp_path):
    import oomnitza_connect as oc

    emulator = oc.get_connector("slack").create_emulator(users=12, seed=1).start()
    try:
        ids = sorted(emulator.expected_user_ids())
        bad = {ids[3]: "nul\x00@example.com", ids[7]: "not-an-email"}
        for user_id, email in bad.items():
            emulator.update_user(user_id, profile={"email": email})
        settings = IntegrationSettings(
            name="x",
            vendor="slack",
            credential="slack",
            default_role="Employee",
            sync_key="email",
            pace_requests=False,
            base_url=emulator.base_url,
        )
        with oc.open_store(tmp_path / "p.db") as store:
            session = oc.run_sync(settings, credential=emulator.test_credential(), store=store)
            emails = sorted(p.fields["email"] for p in store.iter_people())
    finally:
        emulator.stop()
    reasons = {error.vendor_user_id: error.reason for error in session.errors}
    assert "'nul\\x00@example.com' is not an email address" in reasons[ids[3]]
    assert "'not-an-email' is not an email address" in reasons[ids[7]]
    assert set(reasons) == set(bad)
    assert session.counts.failed == 2
    assert emails
    assert not set(emails) & set(bad.values())
