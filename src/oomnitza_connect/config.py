"""Loading TOML configuration into attrs models with cattrs.

A bad file fails with :class:`~oomnitza_connect.errors.ConfigurationError`
naming the file, the key path, the bad value and what is allowed; unknown keys
are errors too, because a misspelled key silently ignored is a sync that does
the wrong thing.
"""

from __future__ import annotations

import enum
import re
import tomllib
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)

from .errors import ConfigurationError
from .redaction import Secret

__all__ = ["load_toml", "make_converter", "structure", "unstructure"]

T = TypeVar("T")


def make_converter() -> cattrs.Converter:
    """Return a converter that knows the SDK's types and forbids unknown keys.

    It is strict about scalars and lists: cattrs would otherwise turn ``1``
    into ``"1"``, ``"yes"`` into ``True`` and ``"a@b.c"`` into a tuple of
    characters, a wrong configuration silently accepted.
    """
    converter = cattrs.Converter(forbid_extra_keys=True)
    scalars: dict[type, Any] = {
        str: _structure_str,
        bool: _structure_bool,
        int: _structure_int,
        float: _structure_float,
    }
    for scalar, check in scalars.items():
        converter.register_structure_hook(scalar, _scalar_hook(check))
    converter.register_structure_hook_func(
        _is_sequence_type, lambda value, tp: _structure_sequence(converter, value, tp)
    )
    converter.register_structure_hook_func(
        _is_mapping_type, lambda value, tp: _structure_mapping(converter, value, tp)
    )
    converter.register_structure_hook(Secret, lambda value, _: _structure_secret(value))
    converter.register_unstructure_hook(Secret, lambda secret: secret.reveal())
    converter.register_structure_hook(datetime, lambda value, _: _structure_datetime(value))
    converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
    return converter


def _scalar_hook(check: Any) -> Any:
    def structure_scalar(value: Any, tp: Any) -> Any:
        # Class hooks also catch subclasses: StrEnum and IntEnum check their values.
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return tp(value)
        return check(value)

    return structure_scalar


def _structure_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _structure_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _structure_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a whole number")
    return value


def _structure_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    return float(value)


def _is_sequence_type(tp: Any) -> bool:
    return tp in (tuple, list) or typing.get_origin(tp) in (tuple, list)


def _structure_sequence(converter: cattrs.Converter, value: Any, tp: Any) -> Any:
    if not isinstance(value, list | tuple):
        raise ValueError("expected a list")
    args = typing.get_args(tp)
    if typing.get_origin(tp) is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(value) != len(args):
            raise ValueError(f"expected a list of {len(args)} items")
        item_types: list[Any] = list(args)
    else:
        item_types = [args[0] if args else Any] * len(value)
    items: list[Any] = []
    errors: list[Exception] = []
    for index, (item, item_type) in enumerate(zip(value, item_types, strict=True)):
        try:
            items.append(item if item_type is Any else converter.structure(item, item_type))
        except Exception as exc:
            exc.add_note(
                IterableValidationNote(f"Structuring {tp} @ index {index}", index, item_type)
            )
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
    return tuple(items) if typing.get_origin(tp) is tuple or tp is tuple else items


def _is_mapping_type(tp: Any) -> bool:
    return typing.get_origin(tp) in (dict, Mapping, typing.Mapping)


def _structure_mapping(converter: cattrs.Converter, value: Any, tp: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError("expected a table")
    args = typing.get_args(tp)
    value_type = args[1] if len(args) == 2 else Any
    result: dict[str, Any] = {}
    errors: list[Exception] = []
    for key, item in value.items():
        try:
            result[key] = item if value_type is Any else converter.structure(item, value_type)
        except Exception as exc:
            note = IterableValidationNote(f"Structuring {tp} @ key {key}", key, value_type)
            exc.add_note(note)
            errors.append(exc)
    if errors:
        raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
    return result


def _structure_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return Secret(value)


def _structure_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        from datetime import UTC

        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise ValueError("expected an ISO-8601 date-time")


_CONVERTER = make_converter()
_KEYED_PROBLEM = re.compile(r"^key '(?P<path>[^']*)': (?P<message>.*)$", re.DOTALL)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning syntax errors into a ConfigurationError."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError("file not found", file=str(file)) from None
    except IsADirectoryError:
        raise ConfigurationError("is a directory, not a TOML file", file=str(file)) from None
    except OSError as exc:
        raise ConfigurationError(f"cannot be read: {exc.strerror}", file=str(file)) from None
    except UnicodeDecodeError:
        raise ConfigurationError("is not UTF-8 text", file=str(file)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"not valid TOML: {exc}", file=str(file)) from None


def structure(
    data: Mapping[str, Any],
    cls: type[T],
    *,
    file: str | Path | None = None,
    converter: cattrs.Converter | None = None,
    secret_keys: frozenset[str] = frozenset(),
) -> T:
    """Turn *data* into *cls*, or raise one ConfigurationError listing every problem.

    :param secret_keys: keys whose values must never be echoed in an error.
    """
    conv = converter or _CONVERTER
    if attrs.has(cls) and not isinstance(data, Mapping):
        raise ConfigurationError(
            f"expected a table of keys, found {type(data).__name__}",
            file=str(file) if file else None,
        )
    try:
        return conv.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        problems = list(_describe(exc, cls, "", data, secret_keys)) or [str(exc)]
        if len(problems) > 1:
            raise ConfigurationError(
                f"{len(problems)} problems in configuration",
                file=str(file) if file else None,
                problems=problems,
            ) from None
        # One problem: keep its key path as an attribute for programs, too.
        match = _KEYED_PROBLEM.match(problems[0])
        raise ConfigurationError(
            match.group("message") if match else problems[0],
            file=str(file) if file else None,
            key_path=match.group("path") if match else None,
        ) from None
    except Exception as exc:
        raise ConfigurationError(
            f"invalid configuration: {exc}", file=str(file) if file else None
        ) from None


def unstructure(obj: Any, *, converter: cattrs.Converter | None = None) -> Any:
    return (converter or _CONVERTER).unstructure(obj)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _field_types(cls: Any) -> dict[str, Any]:
    if attrs.has(cls):
        hints = typing.get_type_hints(cls)
        return {f.name: hints.get(f.name, f.type) for f in attrs.fields(cls)}
    return {}


def _allowed_for(tp: Any) -> str | None:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        parts = [_allowed_for(a) for a in options]
        return " or ".join(p for p in parts if p) or None
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return ", ".join(repr(m.value) for m in tp)
    if tp is bool:
        return "true or false"
    if tp in (int, float):
        return "a number"
    if tp in (str, Secret):
        return "a string"
    if tp is datetime:
        return "an ISO-8601 date-time such as 2024-05-01T09:00:00+00:00"
    if origin in (tuple, list):
        return "a list"
    if origin in (dict, Mapping, typing.Mapping) or attrs.has(tp):
        return "a table"
    return None


def _describe(
    exc: BaseException, cls: Any, path: str, data: Any, secret_keys: frozenset[str]
) -> typing.Iterator[str]:
    if isinstance(exc, ForbiddenExtraKeysError):
        known = sorted(a.name for a in attrs.fields(exc.cl)) if attrs.has(exc.cl) else []
        for key in sorted(exc.extra_fields):
            yield (
                f"key '{_join(path, key)}': unknown key"
                + (f" (allowed: {', '.join(known)})" if known else "")
            )
        return
    if isinstance(exc, ClassValidationError):
        types = _field_types(exc.cl)
        for sub in exc.exceptions:
            note = _note_of(sub)
            if note is None:
                yield from _describe(sub, cls, path, data, secret_keys)
                continue
            name = note.name
            sub_path = _join(path, name)
            sub_data = data.get(name) if isinstance(data, Mapping) else None
            field_type = types.get(name)
            if isinstance(sub, KeyError):
                allowed = _allowed_for(field_type)
                yield f"key '{sub_path}': required key is missing" + (
                    f" (expected {allowed})" if allowed else ""
                )
            elif isinstance(sub, ClassValidationError | IterableValidationError):
                inner = _inner_type(field_type)
                yield from _describe(sub, inner, sub_path, sub_data, secret_keys)
            else:
                yield _value_problem(sub_path, name, sub_data, field_type, sub, secret_keys)
        return
    if isinstance(exc, IterableValidationError):
        item_type = _inner_type(cls)
        for sub in exc.exceptions:
            note = _note_of(sub)
            index = note.index if note is not None else None
            sub_path = _join(path, index) if isinstance(index, int | str) else path
            sub_data = None
            if isinstance(index, int) and isinstance(data, list | tuple) and index < len(data):
                sub_data = data[index]
            elif isinstance(index, str) and isinstance(data, Mapping):
                sub_data = data.get(index)
            if note is not None and getattr(note, "type", None) is not None:
                item_type = note.type
            if isinstance(sub, ClassValidationError | IterableValidationError):
                yield from _describe(sub, item_type, sub_path, sub_data, secret_keys)
            else:
                yield _value_problem(sub_path, str(index), sub_data, item_type, sub, secret_keys)
        return
    yield f"key '{path or '(top level)'}': {exc}"


def _value_problem(
    path: str,
    name: str,
    value: Any,
    field_type: Any,
    exc: BaseException,
    secret_keys: frozenset[str],
) -> str:
    allowed = _allowed_for(field_type)
    shown = "(hidden)" if name in secret_keys else repr(value)
    reason = str(exc) if not isinstance(exc, ValueError | TypeError) else _short_reason(exc)
    text = f"key '{path}': bad value {shown}"
    # "expected a string" says the same as "(allowed: a string)"; keep one.
    if reason and not (allowed and reason.startswith("expected ")):
        text += f": {reason}"
    if allowed:
        text += f" (allowed: {allowed})"
    return text


def _short_reason(exc: BaseException) -> str:
    text = str(exc)
    # cattrs/attrs messages for enum lookups repeat the value; keep them short.
    if "is not a valid" in text:
        return ""
    return text


def _inner_type(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None) and a is not Ellipsis]
    if typing.get_origin(tp) in (tuple, list) and args:
        return args[0]
    for arg in args:
        if attrs.has(arg) or typing.get_origin(arg) in (tuple, list):
            return _inner_type(arg) if typing.get_origin(arg) in (tuple, list) else arg
    return tp


def _note_of(exc: BaseException) -> Any:
    for note in getattr(exc, "__notes__", []) or []:
        if hasattr(note, "name") or hasattr(note, "index"):
            return note
    return None
