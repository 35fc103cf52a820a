"""Smart mapping: propose a person field for every field a vendor offers.

Each vendor field (:attr:`VendorInfo.fields`) is compared by its key and its
label with the standard person fields and their synonyms (``mail`` and
``e-mail`` mean Email, ``surname`` means Last Name), and by its value type
(a date-time does not belong in Phone). The best standard target wins when
it is free; everything else becomes a custom field named after the vendor
(``Slack Is Admin?``), with a converter suited to its type. Each suggestion
carries a confidence from 0 to 1 and the reason for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from ..connectors import Connector, get_connector
from ..models import STANDARD_PERSON_FIELDS, FieldMapping, FieldSpec, FieldType, VendorInfo

__all__ = ["MappingSuggestion", "suggest_mapping"]


@attrs.frozen
class MappingSuggestion:
    """A proposed mapping for one vendor field.

    :param source: the vendor field key.
    :param target: a standard person field key or a custom field label.
    :param confidence: 0 to 1; 0.9 and above is a name match, below 0.5 a guess.
    :param reason: why, in words.
    """

    source: str
    source_label: str
    target: str
    confidence: float
    reason: str
    converter: str | None = None
    unique: bool = False

    @property
    def custom(self) -> bool:
        """Whether the target is a custom field."""
        return self.target not in STANDARD_PERSON_FIELDS

    def to_mapping(self) -> FieldMapping:
        """Return the suggestion as a field mapping."""
        return FieldMapping(
            target=self.target, source=self.source, converter=self.converter, unique=self.unique
        )


# Names that mean each standard field, most specific first.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "username": ("username", "user name", "login", "handle", "screen name", "login name"),
    "email": ("email", "mail", "email address", "e mail", "primary email", "work email"),
    "first_name": ("first name", "given name", "forename", "firstname"),
    "last_name": ("last name", "surname", "family name", "lastname"),
    "full_name": ("full name", "real name", "fullname", "name", "display name"),
    "phone_number": (
        "phone number",
        "phone",
        "mobile",
        "telephone",
        "cell phone",
        "work phone",
        "external phone number",
    ),
    "position": ("position", "title", "job title"),
    "role": ("role", "user role", "access role"),
    "address": ("address", "street address", "location", "office"),
    "external_id": ("external id", "user id", "id", "uid", "guid"),
    "connector_sync_time": ("connector sync time", "sync time", "fetched at"),
    "vendor_api_version": ("vendor api version", "api version"),
    "last_login": (
        "last login",
        "last login at",
        "last seen",
        "last active",
        "last sign in",
        "last activity",
    ),
}

# The value types each standard field can hold.
_TARGET_TYPES: dict[str, frozenset[FieldType]] = {
    "connector_sync_time": frozenset({FieldType.DATETIME}),
    "last_login": frozenset({FieldType.DATETIME}),
    "external_id": frozenset({FieldType.STRING, FieldType.INTEGER}),
}
_TEXT_TYPES = frozenset({FieldType.STRING, FieldType.TEXT})

_CONVERTER_FOR_TYPE = {
    FieldType.BOOLEAN: "bool",
    FieldType.DATETIME: "timestamp",
    FieldType.LIST: "list",
    FieldType.INTEGER: "integer",
}


def _words(text: str) -> str:
    """``userName``, ``user_name`` and ``User Name?`` all give ``user name``."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return " ".join(re.findall(r"[a-z0-9]+", spaced.lower()))


def _type_fits(target: str, kind: FieldType) -> bool:
    return kind in _TARGET_TYPES.get(target, _TEXT_TYPES)


def _score(spec: FieldSpec, target: str) -> tuple[float, str, bool]:
    """Return the confidence that *spec* holds *target*, why, and whether the name matched whole."""
    names = {_words(spec.key), _words(spec.label)}
    best = 0.0
    reason = ""
    exact = False
    for rank, synonym in enumerate(_SYNONYMS[target]):
        if synonym in names:
            score = 0.98 if rank == 0 else 0.95 - 0.01 * min(rank, 5)
            why = f"its name means {STANDARD_PERSON_FIELDS[target]} ('{synonym}')"
            exact = True
        elif any(f" {synonym} " in f" {name} " for name in names) and len(synonym) > 3:
            score = 0.7
            why = f"its name contains '{synonym}'"
        else:
            continue
        if score > best:
            best, reason = score, why
    if best and not _type_fits(target, spec.type):
        best -= 0.5
        reason += f", but its type ({spec.type.value}) does not fit"
    return best, reason, exact


def suggest_mapping(vendor_or_info: str | VendorInfo | Connector) -> list[MappingSuggestion]:
    """Propose a target for every field of a vendor, in the vendor's field order.

    :param vendor_or_info: a connector name, a :class:`VendorInfo` or a :class:`Connector`.
    """
    if isinstance(vendor_or_info, str):
        info = get_connector(vendor_or_info).info
    elif isinstance(vendor_or_info, Connector):
        info = vendor_or_info.info
    else:
        info = vendor_or_info
    return _suggest(info, info.fields)


def _suggest(info: VendorInfo, fields: Iterable[FieldSpec]) -> list[MappingSuggestion]:
    specs = list(fields)
    candidates: list[tuple[float, int, str, str]] = []
    for index, spec in enumerate(specs):
        scored = [(target, *_score(spec, target)) for target in _SYNONYMS]
        # A field whose whole name names a standard field ("Last Login") is
        # that field or nothing: a word inside it ("login") does not count.
        named = any(exact for *_, exact in scored)
        for target, score, reason, exact in scored:
            if score >= 0.5 and (exact or not named):
                candidates.append((score, -index, target, reason))
    chosen: dict[int, MappingSuggestion] = {}
    taken: set[str] = set()
    # Greedy by confidence: each standard target goes to the vendor field that
    # matches it best; a field that loses keeps its own custom field.
    for score, negative_index, target, reason in sorted(candidates, reverse=True):
        index = -negative_index
        if index in chosen or target in taken:
            continue
        spec = specs[index]
        taken.add(target)
        chosen[index] = MappingSuggestion(
            source=spec.key,
            source_label=spec.label,
            target=target,
            confidence=round(score, 2),
            reason=reason,
            converter=_standard_converter(target, spec),
        )
    suggestions: list[MappingSuggestion] = []
    for index, spec in enumerate(specs):
        if index in chosen:
            suggestions.append(chosen[index])
            continue
        converter = _CONVERTER_FOR_TYPE.get(spec.type)
        why = "no standard field matches; kept as a custom field"
        if spec.unique:
            why += " marked unique (the vendor guarantees one value per user)"
        suggestions.append(
            MappingSuggestion(
                source=spec.key,
                source_label=spec.label,
                target=f"{info.display_name} {spec.label}",
                confidence=0.4,
                reason=why,
                converter=converter,
                unique=spec.unique,
            )
        )
    return suggestions


def _standard_converter(target: str, spec: FieldSpec) -> str | None:
    if target == "email":
        return "email"
    if target in ("connector_sync_time", "last_login") and spec.type != FieldType.DATETIME:
        return "timestamp"
    return _CONVERTER_FOR_TYPE.get(spec.type) if spec.type != FieldType.INTEGER else None
