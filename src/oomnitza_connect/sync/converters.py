"""Value converters a field mapping names (``converter = "timestamp"``).

Each converter takes one value and returns the converted value, or raises
:class:`ConversionError` saying what it could not understand. ``None`` passes
through every converter unchanged: a field the vendor left empty stays empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from ..errors import ConversionError

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "convert",
    "converter_names",
    "split_full_name",
    "to_bool",
    "to_datetime",
]

Converter = Callable[[Any], Any]


_TRUE = frozenset({"true", "yes", "y", "1", "on", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "f", ""})
# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_MILLISECONDS_THRESHOLD = 1e11


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def to_bool(value: Any) -> bool:
    """``true``/``yes``/``1``/``on`` and their opposites, case-insensitive."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ConversionError(f"cannot convert {value!r} to true or false", value=value)


def to_integer(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConversionError(f"cannot convert {value!r} to a whole number", value=value)


_NUMBER = re.compile(r"-?\d+(\.\d+)?")
"""Epoch seconds (or milliseconds) written as text. Compiled once: Webex has two
timestamps per person, and ``re.fullmatch`` looks its pattern up on every call."""


def to_datetime(value: Any) -> datetime:
    """Epoch seconds or milliseconds, or ISO-8601 text, as an aware UTC datetime."""
    if type(value) is int:  # epoch seconds (Slack's ``updated``): the common case first
        seconds = float(value)
        if abs(seconds) >= _MILLISECONDS_THRESHOLD:
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ConversionError(f"the timestamp {value!r} is out of range", value=value) from None
    if type(value) is str and value[4:5] == "-":
        # ISO-8601 text with a zone (Webex's four timestamps a person): read at
        # once, a tenth of the general path's cost. A dash after four digits is
        # never epoch text; anything fromisoformat refuses, or a time without a
        # zone, takes the general path below, which gives the same datetime.
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            zone = parsed.tzinfo
            if zone is UTC:
                return parsed
            if zone is not None:
                return parsed.astimezone(UTC)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if _NUMBER.fullmatch(text):
            number = float(text)
        else:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise ConversionError(
                    f"cannot convert {value!r} to a timestamp "
                    "(expected ISO-8601 text or epoch seconds)",
                    value=value,
                ) from None
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if number is None:
        raise ConversionError(f"cannot convert {value!r} to a timestamp", value=value)
    if abs(number) >= _MILLISECONDS_THRESHOLD:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError):
        raise ConversionError(f"the timestamp {value!r} is out of range", value=value) from None


def to_list(value: Any) -> list[Any]:
    """A list as is; text split on commas or semicolons; anything else as a one-item list."""
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    if isinstance(value, str):
        return [part.strip() for part in re.split(r"[,;]", value) if part.strip()]
    return [value]


def join_list(value: Any) -> str:
    """A list as comma-separated text (for a target that holds text)."""
    return ", ".join(_text(item) for item in to_list(value))


def to_email(value: Any) -> str:
    """An email address, lower case; refused without one ``@`` between two parts, or
    with spaces or control characters in it (a NUL would become a sync key)."""
    text = _text(value).strip().lower()
    if (
        text.count("@") != 1
        or text.startswith("@")
        or text.endswith("@")
        or not text.isprintable()
        # Every other whitespace character is not printable: only the space is left.
        or " " in text
    ):
        raise ConversionError(f"{value!r} is not an email address", value=value)
    return text


def split_full_name(value: Any) -> tuple[str, str]:
    """Split a full name into (first, last).

    ``"Egon Spengler"`` gives ``("Egon", "Spengler")``; ``"Spengler, Egon"``
    gives the same; ``"Mary Ann van Dyke"`` gives ``("Mary", "Ann van Dyke")``;
    one word is a first name with an empty last name.
    """
    text = " ".join(_text(value).split())
    if "," in text:
        last, _, first = text.partition(",")
        return first.strip(), last.strip()
    first, _, last = text.partition(" ")
    return first, last


def _first_name(value: Any) -> str:
    return split_full_name(value)[0]


def _last_name(value: Any) -> str:
    return split_full_name(value)[1]


CONVERTERS: dict[str, Converter] = {
    "string": _text,
    "strip": lambda value: _text(value).strip(),
    "lower": lambda value: _text(value).lower(),
    "upper": lambda value: _text(value).upper(),
    "email": to_email,
    "bool": to_bool,
    "integer": to_integer,
    "timestamp": to_datetime,
    "list": to_list,
    "join": join_list,
    "first_name": _first_name,
    "last_name": _last_name,
}
"""Converters by the name a mapping uses."""

_ALIASES = {"boolean": "bool", "int": "integer", "datetime": "timestamp", "str": "string"}


def converter_names() -> list[str]:
    """Return the converter names a mapping may use."""
    return sorted(CONVERTERS)


def resolve(name: str) -> Converter:
    """Return the converter called *name* (aliases ``boolean``, ``int``, ``datetime``, ``str``).

    :raises ConversionError: there is no such converter; the message lists them.
    """
    converter = CONVERTERS.get(_ALIASES.get(name, name))
    if converter is None:
        raise ConversionError(
            f"there is no converter named '{name}' (available: {', '.join(converter_names())})"
        )
    return converter


def convert(name: str, value: Any) -> Any:
    """Convert *value* with the converter called *name*; ``None`` stays ``None``."""
    converter = resolve(name)
    if value is None:
        return None
    return converter(value)
