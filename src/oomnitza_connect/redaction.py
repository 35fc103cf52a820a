"""Secrets that cannot leak by accident.

A :class:`Secret` prints as ``'**********'`` in ``repr``/``str``/f-strings, so
a credential object can be logged, put into an exception message or shown in a
notebook without exposing what it holds. Every secret value ever wrapped is
also remembered (process-wide) so that :class:`RedactingFilter` can scrub it
from log records that were formatted with the raw value, for example a URL
that a vendor echoed back.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from typing import Any

__all__ = ["MASK", "RedactingFilter", "Secret", "install_log_redaction", "known_secrets", "redact"]

MASK = "**********"
# Short values (""/"a") would redact every occurrence of a letter; they are not
# worth protecting by substitution and still print masked through Secret.
_MIN_REDACTABLE_LENGTH = 4

_registry_lock = threading.Lock()
_known_values: set[str] = set()


def spellings(value: str) -> set[str]:
    """Return *value* and the forms it takes inside exception text and reprs.

    A secret that holds a control character or a non-ASCII letter reaches a
    message escaped, not raw: ``repr()`` of the string (``'tok\\n'``), of its
    UTF-8 bytes (``b'tok\\n'``, what ``requests`` puts into "Invalid header
    value"), or JSON. The value without its surrounding whitespace counts too,
    since a message may quote it stripped.
    """
    forms = {value, value.strip()}
    forms.add(repr(value)[1:-1])
    forms.add(value.encode("unicode_escape").decode("ascii"))
    forms.add(repr(value.encode("utf-8", "backslashreplace"))[2:-1])
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return {form for form in forms if len(form) >= _MIN_REDACTABLE_LENGTH}


def _remember(value: str) -> None:
    if len(value) >= _MIN_REDACTABLE_LENGTH:
        forms = spellings(value)
        with _registry_lock:
            _known_values.update(forms)


def known_secrets() -> frozenset[str]:
    """Return every secret value wrapped so far in this process (and its escaped spellings)."""
    with _registry_lock:
        return frozenset(_known_values)


class Secret:
    """A string that never shows itself unless asked with :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a secret must be a string, not {type(value).__name__}")
        self._value = value
        _remember(value)

    def reveal(self) -> str:
        """Return the real value; only code that sends it to the vendor should call this."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __copy__(self) -> Secret:
        return self  # immutable: a copy would be the same value

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce__(self) -> Any:
        # Pickling would write the value to disk or to another process's logs.
        raise TypeError(
            "Secret values cannot be pickled: a pickle would hold the secret in clear text "
            "(on disk, or on its way to another process). copy.copy and copy.deepcopy work; "
            "pass the credential's name to another process and read it from the credential "
            "store there"
        )


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """Replace every known secret (and every value in *extra*) inside *text*."""
    values = set(known_secrets())
    for value in extra:
        if value and len(value) >= _MIN_REDACTABLE_LENGTH:
            values.update(spellings(value))
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted(values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Scrub known secret values from every record that passes through."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not hide the record
        return
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None:
        # The traceback is rendered later by the handler; render it now so
        # that it can be scrubbed too.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        record.exc_info = None


# Loggers whose records may carry request details: ours and the HTTP stack's.
_SCRUBBED_LOGGERS = ("oomnitza_connect", "urllib3", "requests", "oauthlib", "vcr")
_installed = False
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Scrub secrets from every record of the SDK's and the HTTP stack's loggers (idempotent).

    The scrubbing happens in the log record factory, i.e. when the record is
    created, so it holds whatever handlers, formatters or propagation settings
    an application configures later.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
        previous_factory = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous_factory(*args, **kwargs)
            if record.name.startswith(_SCRUBBED_LOGGERS):
                _scrub(record)
            return record

        logging.setLogRecordFactory(factory)
