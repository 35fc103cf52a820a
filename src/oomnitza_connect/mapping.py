"""The built-in ``map_record`` implementation (minimal; extended by the mapping work)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .hookspecs import hookimpl
from .models import FieldMapping, VendorRecord
from .templating import render_value


@hookimpl(trylast=True)
def map_record(
    vendor: str,
    record: VendorRecord,
    mapping: tuple[FieldMapping, ...],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    variables = {**context, **record.fields}
    for field_mapping in mapping:
        if field_mapping.source is not None:
            result[field_mapping.target] = record.fields.get(field_mapping.source)
        elif field_mapping.expression is not None:
            result[field_mapping.target] = render_value(field_mapping.expression, variables)
    return result
