"""The attrs models: secrets that never show, validation, and frozen values."""

from __future__ import annotations

import copy
import logging
import pickle
from datetime import UTC, datetime

import attrs
import pytest

from oomnitza_connect import (
    AuthKind,
    Credential,
    FieldMapping,
    FieldSpec,
    FieldType,
    IntegrationSettings,
    Preset,
    Secret,
    SyncSession,
    VendorInfo,
    VendorRecord,
)
from oomnitza_connect.models import STANDARD_PERSON_FIELDS, SyncCounts, SyncStatus
from oomnitza_connect.redaction import install_log_redaction

TOKEN = "xoxb-model-test-token-9876"
PASSWORD = "hunter2-but-longer"


@pytest.fixture
def credential() -> Credential:
    return Credential(
        name="slack-bot",
        vendor="slack",
        kind=AuthKind.API_KEY,
        token=TOKEN,
        password=PASSWORD,
        client_id="client-1",
    )


def test_secret_fields_become_secrets(credential: Credential) -> None:
    assert isinstance(credential.token, Secret)
    assert credential.token.reveal() == TOKEN
    assert credential.secret_values() == (TOKEN, PASSWORD)
    assert credential.client_secret is None


@pytest.mark.parametrize(
    "render",
    [repr, str, lambda c: f"{c}", lambda c: format(c, ""), lambda c: "%s %r" % (c, c)],  # noqa: UP031
    ids=["repr", "str", "f-string", "format", "percent"],
)
def test_a_credential_never_prints_its_secrets(credential: Credential, render: object) -> None:
    text = render(credential)  # type: ignore[operator]
    assert TOKEN not in text
    assert PASSWORD not in text
    assert "Secret('**********')" in text
    assert "client-1" in text  # non-secret fields still help debugging


def test_a_credential_never_reaches_logs(
    credential: Credential, caplog: pytest.LogCaptureFixture
) -> None:
    install_log_redaction()  # what the SDK does on first use of its plugins or CLI
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("anything.at.all").info("using %s and %r", credential, credential.token)
        logging.getLogger("oomnitza_connect.sync.engine").info(
            "sent token %s", credential.token.reveal()
        )  # type: ignore[union-attr]
    assert TOKEN not in caplog.text
    assert PASSWORD not in caplog.text
    assert "sent token **********" in caplog.text


def test_a_credential_refuses_to_be_pickled_and_says_why(credential: Credential) -> None:
    with pytest.raises(TypeError, match="Secret values cannot be pickled: a pickle would hold"):
        pickle.dumps(credential)


@attrs.define
class Holder:
    """What a notebook or script keeps a credential in."""

    credential: Credential
    extra: dict[str, object]


@pytest.mark.parametrize("copier", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_a_credential_and_what_holds_it_can_be_copied(
    credential: Credential, copier: object
) -> None:
    holder = Holder(credential, {"by_name": {"slack-bot": credential}, "token": credential.token})
    for original in (credential, holder, [credential], {"c": credential}):
        copied = copier(original)  # type: ignore[operator]
        assert copied == original
        for text in (repr(copied), str(copied)):
            assert TOKEN not in text
            assert PASSWORD not in text
    copied_holder = copy.deepcopy(holder)
    assert copied_holder.credential.token.reveal() == TOKEN  # type: ignore[union-attr]
    # A Secret is immutable, so the copy is the very same object.
    assert copied_holder.credential.token is credential.token
    assert copied_holder.extra["token"] is credential.token


def test_models_are_frozen(credential: Credential) -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        credential.name = "other"  # type: ignore[misc]
    rotated = attrs.evolve(credential, access_token="new-access-token")
    assert rotated.access_token == Secret("new-access-token")
    assert credential.access_token is None


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"source": "a", "expression": "{{ b }}"}],
    ids=["neither", "both"],
)
def test_a_field_mapping_needs_exactly_one_of_source_and_expression(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="mapping for 'email' needs exactly one of"):
        FieldMapping("email", **kwargs)


def test_vendor_info_finds_fields_by_key() -> None:
    info = VendorInfo(
        name="acme",
        display_name="Acme",
        base_url="https://api.acme.example",
        auth_kinds=(AuthKind.API_KEY,),
        fields=(
            FieldSpec("id", "User Id", unique=True),
            FieldSpec("seen", "Seen", FieldType.DATETIME),
        ),
    )
    assert info.field("seen").type is FieldType.DATETIME
    with pytest.raises(KeyError):
        info.field("nope")


def test_mappings_are_copied_so_callers_cannot_change_a_model() -> None:
    source = {"team": "T1"}
    settings = IntegrationSettings(name="i", vendor="slack", credential="c", settings=source)
    source["team"] = "changed"
    assert settings.settings == {"team": "T1"}
    record = VendorRecord("slack", "U1", fields={"a": 1}, raw={"secret_ish": "x"})
    assert "secret_ish" not in repr(record)  # raw payloads stay out of reprs


def test_sync_counts_total_and_session_defaults() -> None:
    counts = SyncCounts(created=2, updated=3, unchanged=4, skipped=1, failed=1)
    assert counts.total == 11
    session = SyncSession(
        id="s1",
        integration="i",
        vendor="slack",
        started_at=datetime(2024, 1, 1, tzinfo=UTC),
        status=SyncStatus.RUNNING,
    )
    assert session.counts == SyncCounts()
    assert session.test_run is False


def test_presets_and_standard_fields() -> None:
    preset = Preset(
        vendor="acme",
        name="Get",
        description="d",
        method="GET",
        path="/u/{{id}}",
        variables=("id",),
    )
    assert preset.idempotent is True
    assert preset.query == {}
    assert STANDARD_PERSON_FIELDS["username"] == "Username"
    assert STANDARD_PERSON_FIELDS["email"] == "Email"
