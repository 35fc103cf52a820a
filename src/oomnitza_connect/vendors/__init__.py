"""Vendors as objects: the declarative REST description, the vendor base classes, sessions.

A vendor plugin subclasses :class:`RestVendor`, states its API as data
(:mod:`.description`) and registers one instance; see ``docs/architecture.md``.
"""

from .base import RestVendor, Vendor
from .description import (
    CursorPaging,
    ErrorRules,
    HalPaging,
    LinkHeaderPaging,
    OffsetPaging,
    PageNumberPaging,
    Paging,
    SinglePage,
    UsersEndpoint,
    WhoAmI,
    compile_path,
    dig,
)
from .session import VendorSession, open_session

__all__ = [
    "CursorPaging",
    "ErrorRules",
    "HalPaging",
    "LinkHeaderPaging",
    "OffsetPaging",
    "PageNumberPaging",
    "Paging",
    "RestVendor",
    "SinglePage",
    "UsersEndpoint",
    "Vendor",
    "VendorSession",
    "WhoAmI",
    "compile_path",
    "dig",
    "open_session",
]
