"""Secrets: masked everywhere, scrubbed from logs, never pickled."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oomnitza_connect.redaction import (
    MASK,
    RedactingFilter,
    Secret,
    install_log_redaction,
    known_secrets,
    redact,
)


def test_a_secret_masks_itself_everywhere() -> None:
    secret = Secret("s3cr3t-value-1")
    assert repr(secret) == "Secret('**********')"
    assert str(secret) == MASK
    assert f"{secret}" == MASK
    assert f"{secret:>30}" == MASK
    assert "%s" % secret == MASK  # noqa: UP031 - logging formats this way
    assert secret.reveal() == "s3cr3t-value-1"


def test_secrets_compare_and_hash_by_value_and_are_truthy_when_not_empty() -> None:
    assert Secret("abcd-1") == Secret("abcd-1")
    assert Secret("abcd-1") != Secret("abcd-2")
    assert Secret("abcd-1") != "abcd-1"  # a secret is not a string
    assert len({Secret("abcd-1"), Secret("abcd-1")}) == 1
    assert not Secret("")
    assert Secret(Secret("nested-1")).reveal() == "nested-1"


def test_only_strings_can_be_secrets() -> None:
    with pytest.raises(TypeError, match="a secret must be a string, not int"):
        Secret(1234)  # type: ignore[arg-type]


def test_a_secret_cannot_be_pickled() -> None:
    with pytest.raises(TypeError, match="Secret values cannot be pickled") as refused:
        pickle.dumps(Secret("pickle-me-not"))
    assert "clear text" in str(refused.value)
    assert "pickle-me-not" not in str(refused.value)


def test_a_secret_copies_as_itself() -> None:
    secret = Secret("copy-me-fine-1")
    assert copy.copy(secret) is secret
    assert copy.deepcopy(secret) is secret
    assert copy.deepcopy([secret, {"s": secret}]) == [secret, {"s": secret}]


def test_redact_replaces_known_and_extra_values_longest_first() -> None:
    Secret("short-1")
    Secret("short-1-and-longer")
    assert "short-1-and-longer" in known_secrets()
    assert redact("a short-1-and-longer b short-1 c") == f"a {MASK} b {MASK} c"
    assert redact("key=extra-value-9", extra=["extra-value-9"]) == f"key={MASK}"
    # Values too short to redact by substitution would mask ordinary text.
    Secret("ab")
    assert redact("abc") == "abc"


def test_sdk_loggers_scrub_raw_secret_values(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    token = Secret("raw-token-in-a-url-77")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("oomnitza_connect.transport.http").debug(
            "GET https://x.example/?token=%s", token.reveal()
        )
        logging.getLogger("urllib3.connectionpool").debug("echo %s", token.reveal())
    assert "raw-token-in-a-url-77" not in caplog.text
    assert f"?token={MASK}" in caplog.text


def test_tracebacks_in_logs_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    token = Secret("traceback-secret-55")
    with caplog.at_level(logging.ERROR):
        try:
            raise RuntimeError(f"failed with {token.reveal()}")
        except RuntimeError:
            logging.getLogger("oomnitza_connect.sync.engine").exception("run failed")
    assert "traceback-secret-55" not in caplog.text
    assert "RuntimeError: failed with **********" in caplog.text


def test_the_filter_scrubs_records_of_any_logger() -> None:
    Secret("filtered-secret-33")
    record = logging.LogRecord(
        "app", logging.INFO, __file__, 1, "got %s", ("filtered-secret-33",), None
    )
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == f"got {MASK}"


SECRET_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."


@given(
    before=st.text(max_size=40),
    after=st.text(max_size=40),
    secret=st.text(alphabet=SECRET_ALPHABET, min_size=4, max_size=40),
    repeats=st.integers(min_value=1, max_value=3),
)
def test_redact_removes_every_occurrence_of_a_secret(
    before: str, after: str, secret: str, repeats: int
) -> None:
    # `extra` rather than Secret(): the process-wide registry must not learn
    # random words that would then be masked in other tests' output.
    text = before + (secret + after) * repeats
    assert secret not in redact(text, extra=[secret])


@given(value=st.text(min_size=1, max_size=60))
def test_a_secret_never_shows_in_its_repr_str_or_format(value: str) -> None:
    secret = object.__new__(Secret)  # bypass the registry, as above
    object.__setattr__(secret, "_value", value)
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}"):
        assert shown in (MASK, f"Secret('{MASK}')")
    assert secret.reveal() == value
