"""The Webex plugin's entry point: the vendor object (see :mod:`.vendor`)."""

from __future__ import annotations

from .vendor import WebexVendor, vendor

__all__ = ["WebexVendor", "vendor"]
