"""Pagination helpers: generators that fetch one page per step, as the caller iterates.

Each helper yields the decoded JSON body of every page and stops on the last
one. A cursor or next link that comes back a second time in one run raises
:class:`~oomnitza_connect.errors.PaginationError` instead of looping forever,
and a next link must stay on the host of the client's base URL.

===========================  ==============================================
vendor style                 helper
===========================  ==============================================
cursor in the body (Slack)   :func:`iter_cursor_pages`
``Link: <…>; rel="next"``    :func:`iter_link_header_pages` (Webex)
HAL ``_links.next.href``     :func:`iter_hal_pages` (Talkdesk)
``page``/``per_page``        :func:`iter_page_number_pages`
``offset``/``limit``         :func:`iter_offset_pages`
one page                     :func:`iter_single_page`
===========================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import requests

from ..errors import PaginationError
from .http import HttpClient, PageMemo

__all__ = [
    "KnownPage",
    "NextLinkRepair",
    "iter_cursor_pages",
    "iter_hal_pages",
    "iter_link_header_pages",
    "iter_offset_pages",
    "iter_page_number_pages",
    "iter_single_page",
    "restore_dropped_params",
]

NextLinkRepair = Callable[[str, Mapping[str, Any], str], str]
"""``repair(previous_url, previous_params, next_link) -> fixed_url``.

Called with the full URL of the previous request (query string included), the
parameters the caller passed to the first request and the next link the vendor
sent; returns the URL to fetch. See :func:`restore_dropped_params`.
"""

ItemsOf = str | Callable[[Any], Sequence[Any]]


class KnownPage(dict[str, Any]):
    """A page a :class:`~oomnitza_connect.transport.http.PageMemo` recognised by its bytes.

    The page as decoded before, without its users (so cursors, next links and
    totals read as usual), and *recalled*: what the memo knows of its users.
    """

    def __init__(self, skeleton: Mapping[str, Any], recalled: Any) -> None:
        super().__init__(skeleton)
        self.recalled = recalled


def _dig(data: Any, path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _items(data: Any, items: ItemsOf) -> Sequence[Any]:
    if callable(items):
        return items(data)
    found = _dig(data, items.split("."))
    return found if isinstance(found, list) else []


def iter_single_page(
    client: HttpClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    memo: PageMemo | None = None,
) -> Iterator[Any]:
    """Yield the one page an unpaginated endpoint returns."""
    yield client.get_json(path, params=params, endpoint=endpoint, memo=memo)


def iter_cursor_pages(
    client: HttpClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    cursor_param: str = "cursor",
    cursor_path: Sequence[str] = ("response_metadata", "next_cursor"),
    method: str = "GET",
    memo: PageMemo | None = None,
) -> Iterator[Any]:
    """Yield pages while the body names a next cursor (Slack's ``next_cursor``).

    An empty or missing cursor ends the run. With ``method="POST"`` the
    parameters and the cursor are sent as a form body. A page *memo*
    recognises may come as a :class:`KnownPage`.
    """
    base = dict(params or {})
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        query = dict(base)
        if cursor:
            query[cursor_param] = cursor
        if method.upper() == "GET":
            page = client.get_json(path, params=query, endpoint=endpoint, memo=memo)
        else:
            # Listing is a read even when the vendor wants it as a POST.
            page = client.request_json(
                method, path, data=query, endpoint=endpoint, idempotent=True, memo=memo
            ).data
        yield page
        next_cursor = _dig(page, cursor_path)
        if not next_cursor:
            return
        next_cursor = str(next_cursor)
        if next_cursor in seen:
            raise PaginationError(
                f"the vendor sent cursor {next_cursor!r} a second time, so pagination "
                "stopped instead of looping",
                vendor=client.vendor,
                method=method.upper(),
                endpoint=endpoint or path,
            )
        seen.add(next_cursor)
        cursor = next_cursor


def _follow_next_links(
    client: HttpClient,
    path: str,
    params: Mapping[str, Any] | None,
    endpoint: str | None,
    next_link_of: Callable[[requests.Response, Any], str | None],
    repair_next: NextLinkRepair | None,
    memo: PageMemo | None,
) -> Iterator[Any]:
    first_params = dict(params or {})
    result = client.request_json("GET", path, params=first_params, endpoint=endpoint, memo=memo)
    seen = {_normalise(result.response.url)}
    while True:
        yield result.data
        link = next_link_of(result.response, result.data)
        if not link:
            return
        previous_url = result.response.url
        next_url = urljoin(previous_url, link)
        if repair_next is not None:
            next_url = repair_next(previous_url, first_params, next_url)
        _check_same_host(client, next_url, endpoint or path)
        key = _normalise(next_url)
        if key in seen:
            raise PaginationError(
                "the vendor's next link points to a page already fetched, so pagination "
                "stopped instead of looping",
                vendor=client.vendor,
                method="GET",
                endpoint=endpoint or path,
            )
        seen.add(key)
        result = client.request_json("GET", next_url, endpoint=endpoint, memo=memo)


def _normalise(url: str) -> str:
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))


def _check_same_host(client: HttpClient, url: str, endpoint: str) -> None:
    target = urlsplit(url)
    base = urlsplit(client.base_url)
    if (target.scheme.lower(), target.netloc.lower()) != (base.scheme.lower(), base.netloc.lower()):
        # Following it would send the credential to another host.
        raise PaginationError(
            f"the vendor's next link leads to {target.scheme}://{target.netloc}, not to "
            f"{base.scheme}://{base.netloc}; it was not followed",
            vendor=client.vendor,
            method="GET",
            endpoint=endpoint,
        )


def iter_link_header_pages(
    client: HttpClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    repair_next: NextLinkRepair | None = None,
    memo: PageMemo | None = None,
) -> Iterator[Any]:
    """Yield pages while the response has a ``Link: <…>; rel="next"`` header (Webex)."""

    def next_link(response: requests.Response, _data: Any) -> str | None:
        return response.links.get("next", {}).get("url")

    yield from _follow_next_links(client, path, params, endpoint, next_link, repair_next, memo)


def iter_hal_pages(
    client: HttpClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    next_path: Sequence[str] = ("_links", "next", "href"),
    repair_next: NextLinkRepair | None = None,
    memo: PageMemo | None = None,
) -> Iterator[Any]:
    """Yield pages while the body has a HAL ``_links.next.href`` (Talkdesk)."""

    def next_link(_response: requests.Response, data: Any) -> str | None:
        href = _dig(data, next_path)
        return str(href) if href else None

    yield from _follow_next_links(client, path, params, endpoint, next_link, repair_next, memo)


def iter_page_number_pages(
    client: HttpClient,
    path: str,
    *,
    items: ItemsOf,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    page_param: str = "page",
    per_page_param: str = "per_page",
    per_page: int = 100,
    first_page: int = 1,
    total_pages_path: Sequence[str] | None = None,
    next_page_path: Sequence[str] | None = None,
) -> Iterator[Any]:
    """Yield pages ``page=1, 2, …`` until one is short or empty.

    :param items: the key (dotted) or a function giving a page's items.
    :param total_pages_path: where the body states the page count, when it does.
    :param next_page_path: where the body names the next page number (``null``
        on the last page); when given, it alone decides, since a vendor may
        serve fewer users than asked for.
    """
    page_number = first_page
    previous: tuple[Any, ...] | None = None
    while True:
        query = {**(params or {}), page_param: page_number, per_page_param: per_page}
        page = client.get_json(path, params=query, endpoint=endpoint)
        previous = _refuse_repeat(client, page, items, previous, endpoint or path)
        yield page
        if next_page_path is not None:
            next_page = _dig(page, next_page_path)
            if next_page is None or next_page == "":
                return
            if not isinstance(next_page, int) or next_page <= page_number:
                raise PaginationError(
                    f"the vendor named page {next_page!r} as the next after page "
                    f"{page_number}, so pagination stopped instead of repeating or going back",
                    vendor=client.vendor,
                    method="GET",
                    endpoint=endpoint or path,
                )
            page_number = next_page
            continue
        count = len(_items(page, items))
        if total_pages_path is not None:
            total = _dig(page, total_pages_path)
            if isinstance(total, int) and page_number - first_page + 1 >= total:
                return
        if count < per_page or count == 0:
            return
        page_number += 1


def iter_offset_pages(
    client: HttpClient,
    path: str,
    *,
    items: ItemsOf,
    params: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    offset_param: str = "offset",
    limit_param: str = "limit",
    limit: int = 100,
) -> Iterator[Any]:
    """Yield pages ``offset=0, limit, 2*limit, …`` until one is short or empty."""
    offset = 0
    previous: tuple[Any, ...] | None = None
    while True:
        query = {**(params or {}), offset_param: offset, limit_param: limit}
        page = client.get_json(path, params=query, endpoint=endpoint)
        previous = _refuse_repeat(client, page, items, previous, endpoint or path)
        yield page
        count = len(_items(page, items))
        if count < limit or count == 0:
            return
        offset += count


def _refuse_repeat(
    client: HttpClient,
    page: Any,
    items: ItemsOf,
    previous: tuple[Any, ...] | None,
    endpoint: str,
) -> tuple[Any, ...] | None:
    """Refuse a page that holds exactly the users of the page before it; return its ids.

    Page numbers and offsets carry no cursor that could be seen twice, so a
    vendor (or a cache in front of it) that answers the next page with the
    previous one is recognized by its content, before its users are yielded
    a second time.
    """
    ids = tuple(
        item.get("id") if isinstance(item, Mapping) else None for item in _items(page, items)
    )
    if ids and previous is not None and ids == previous and any(i is not None for i in ids):
        raise PaginationError(
            "the vendor answered the next page with the same users as the page before, so "
            "pagination stopped instead of repeating them",
            vendor=client.vendor,
            method="GET",
            endpoint=endpoint,
        )
    return ids


def restore_dropped_params(
    previous_url: str, previous_params: Mapping[str, Any], next_link: str
) -> str:
    """Repair a next link that lost the caller's query parameters (Webex).

    Parameters of the first request missing from *next_link*, or present
    there as ``null`` or empty, are put back; the link's own values (the
    cursor) win otherwise.
    """
    parts = urlsplit(next_link)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, v in pairs if v not in ("", "null")}
    kept = [(k, v) for k, v in pairs if v not in ("", "null") or k not in previous_params]
    for key, value in previous_params.items():
        if key not in present and value is not None:
            kept = [(k, v) for k, v in kept if k != key]
            kept.append((key, str(value)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
