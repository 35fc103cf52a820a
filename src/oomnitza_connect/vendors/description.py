"""The declarative description of a REST vendor: data, not code.

A vendor on this description states where its API lives, how it pages its
users, where each field sits in its JSON and where its errors say what went
wrong; :class:`~oomnitza_connect.vendors.base.RestVendor` does the rest. The
classes cover what Slack, Intercom, Webex and Talkdesk need and no more: this
is not a new language, and any part can be overridden in Python.

Dotted paths (``profile.email``, ``errors.0.code``) walk mappings by key and
lists by index; a missing step gives ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from ..models import _freeze_mapping
from ..transport.pagination import NextLinkRepair

__all__ = [
    "CursorPaging",
    "ErrorRules",
    "HalPaging",
    "LinkHeaderPaging",
    "OffsetPaging",
    "PageNumberPaging",
    "Paging",
    "SinglePage",
    "UsersEndpoint",
    "WhoAmI",
    "compile_path",
    "dig",
]

_MISSING = object()


def compile_path(path: str | None) -> Callable[[Any], Any]:
    """Return a function reading *path* from a decoded JSON value.

    Compiled once per field, not per record: the sync reads every field of
    every user through these.
    """
    if not path:
        return lambda value: value
    steps: tuple[str | int, ...] = tuple(
        int(part) if part.isdigit() else part for part in path.split(".")
    )
    # Decoded JSON objects are dicts: ``type(...) is dict`` answers first, since
    # isinstance(..., Mapping) goes through the ABC machinery (a million calls
    # in a 30,000-user sync); anything else takes the general walk below.
    if len(steps) == 1 and isinstance(steps[0], str):
        key = steps[0]

        def read_key(value: Any) -> Any:
            if type(value) is dict:
                return value.get(key)
            return value.get(key) if isinstance(value, Mapping) else None

        return read_key

    def read(value: Any) -> Any:
        for step in steps:
            if isinstance(step, int):
                if not isinstance(value, Sequence) or isinstance(value, str | bytes):
                    return None
                value = value[step] if -len(value) <= step < len(value) else None
            elif isinstance(value, Mapping):
                value = value.get(step)
            else:
                return None
            if value is None:
                return None
        return value

    if len(steps) == 2 and isinstance(steps[0], str) and isinstance(steps[1], str):
        outer, inner = steps

        def read_pair(value: Any) -> Any:
            if type(value) is dict:
                nested = value.get(outer)
                if nested is None:
                    return None
                if type(nested) is dict:
                    return nested.get(inner)
            return read(value)

        return read_pair
    return read


def dig(value: Any, path: str | None) -> Any:
    """Read *path* from *value* once (use :func:`compile_path` in loops)."""
    return compile_path(path)(value)


# ---------------------------------------------------------------------------
# Paging styles
# ---------------------------------------------------------------------------


@attrs.frozen
class CursorPaging:
    """A cursor in the body names the next page (Slack's ``response_metadata.next_cursor``)."""

    cursor_param: str = "cursor"
    next_cursor_path: str = "response_metadata.next_cursor"


@attrs.frozen
class LinkHeaderPaging:
    """``Link: <…>; rel="next"`` names the next page (Webex); other rels mean nothing.

    :param repair_next: fixes a vendor's broken next link
        (:func:`~oomnitza_connect.transport.pagination.restore_dropped_params`).
    """

    repair_next: NextLinkRepair | None = None


@attrs.frozen
class HalPaging:
    """HAL ``_links.next.href`` in the body names the next page (Talkdesk)."""

    next_path: str = "_links.next.href"
    repair_next: NextLinkRepair | None = None


@attrs.frozen
class PageNumberPaging:
    """``page=1, 2, …`` until a page is short or empty (or the stated page count is reached)."""

    page_param: str = "page"
    first_page: int = 1
    total_pages_path: str | None = None
    next_page_path: str | None = None
    """Where the body names the next page number, for vendors that say so."""


@attrs.frozen
class OffsetPaging:
    """``offset=0, n, 2n, …`` until a page is short or empty."""

    offset_param: str = "offset"


@attrs.frozen
class SinglePage:
    """The whole list comes in one answer (Intercom's ``/admins``)."""


Paging = CursorPaging | LinkHeaderPaging | HalPaging | PageNumberPaging | OffsetPaging | SinglePage


# ---------------------------------------------------------------------------
# Endpoints
# ---------------------------------------------------------------------------


@attrs.frozen
class UsersEndpoint:
    """Where the users are and how they are paged.

    :param path: the path under the base URL (``users.list``, ``/v1/people``).
    :param items: the dotted path to a page's list of users (``members``); ``""``
        when the page itself is the list.
    :param paging: the paging style.
    :param endpoint: the rate-budget name of the call; defaults to *path*.
    :param params: query parameters of the first request; values are templates
        over the global settings (``{{Slack.TeamId}}``); one that renders empty
        is left out.
    :param page_size_param: the query parameter carrying the page size
        (``limit``, ``max``, ``per_page``), if the vendor has one.
    :param page_size_setting: the global setting holding the page size.
    :param default_page_size: the page size when no setting gives one; ``None``
        sends no page size then, so the vendor picks its own (Talkdesk's 50).
        Page-number and offset paging need a size and use 100.
    :param total_path: where a page states how many users there are in all,
        for progress.
    :param field_params: query parameters sent only when the caller reads a
        field (field key -> parameters): Intercom's ``display_avatar=true`` for
        ``avatar``. The sync engine says which fields it reads
        (:attr:`~oomnitza_connect.vendors.session.VendorSession.wanted_fields`);
        when nobody says, they are sent.
    :param volatile_keys: top-level keys of a page, after its users, whose
        scalar value changes from one request to the next although the users
        do not (Slack's ``cache_ts``); a page is recognised by its bytes without
        them (:mod:`oomnitza_connect.sync.pages`).
    """

    path: str
    items: str
    paging: Paging = SinglePage()
    endpoint: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    page_size_param: str | None = None
    page_size_setting: str | None = None
    default_page_size: int | None = 100
    total_path: str | None = None
    field_params: Mapping[str, Mapping[str, str]] = attrs.field(
        factory=dict, converter=_freeze_mapping
    )
    volatile_keys: tuple[str, ...] = ()

    @property
    def budget_name(self) -> str:
        return self.endpoint or self.path


@attrs.frozen
class WhoAmI:
    """The cheap call that proves a credential and says whose it is.

    :param identity: name -> dotted path in the answer (``{"team": "team"}``);
        the session's :attr:`identity` holds what is found.
    :param scopes_header: a response header listing the granted scopes
        (Slack's ``X-OAuth-Scopes``), kept as ``identity["scopes"]``.
    :param params: query parameters of the call (Talkdesk's ``per_page=1``, so
        proving the credential reads one user, not a page of them).
    """

    path: str
    method: str = "GET"
    endpoint: str | None = None
    params: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    identity: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    scopes_header: str | None = None


@attrs.frozen
class ErrorRules:
    """Where a vendor's errors say what went wrong, and what its codes mean.

    :param code: dotted paths (tried in order) to the vendor's error code in an error body.
    :param message: dotted paths to the vendor's message.
    :param request_id_headers: response headers holding the request or tracking id.
    :param request_id: dotted paths to the request id in the body.
    :param success_flag: a dotted path to a flag that is ``false`` when a 2xx
        answer is an error (Slack's ``ok``).
    :param credential_codes: codes meaning the credential, not the request, is
        the problem (raised as :class:`~oomnitza_connect.errors.CredentialRefusedError`).
    :param rate_limited_codes: codes meaning "slow down", retried like a 429.
    :param token_expired_codes: codes meaning the access token expired; the
        auth refreshes once and the request is retried.
    :param missing_scope_codes: codes meaning the token lacks a scope.
    :param needed_scope: dotted paths to the missing scope's name in the body.
    :param explanations: code -> a sentence for people.
    :param default_retry_after: seconds to wait on a rate limit that names no
        wait (Webex: 15).
    """

    code: tuple[str, ...] = ("error.code", "code", "error")
    message: tuple[str, ...] = ("error.message", "message", "error_description")
    request_id_headers: tuple[str, ...] = ("X-Request-Id",)
    request_id: tuple[str, ...] = ("request_id",)
    success_flag: str | None = None
    credential_codes: frozenset[str] = frozenset()
    rate_limited_codes: frozenset[str] = frozenset()
    token_expired_codes: frozenset[str] = frozenset()
    missing_scope_codes: frozenset[str] = frozenset()
    needed_scope: tuple[str, ...] = ()
    explanations: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze_mapping)
    default_retry_after: float | None = None
