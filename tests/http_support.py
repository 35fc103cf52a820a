"""Small emulators for the HTTP, pagination and auth tests.

``DirectoryEmulator`` serves one list of users five ways (cursor in the body,
``Link`` header, HAL links, page numbers, offsets) behind bearer tokens, and
has the OAuth2 token endpoint of :mod:`oomnitza_connect.testing.oauth`.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlencode

from oomnitza_connect.testing.emulator import (
    Emulator,
    EmulatorRequest,
    EmulatorResponse,
    json_response,
    route,
)
from oomnitza_connect.testing.oauth import OAuthTokenEndpointMixin

STATIC_TOKEN = "static-test-token-1234"


def _user(index: int) -> dict[str, Any]:
    return {"id": f"U{index:04d}", "name": f"user{index}"}


class DirectoryEmulator(OAuthTokenEndpointMixin, Emulator):
    vendor: ClassVar[str] = "directory"

    def __init__(self, *, users: int = 25, page_size: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.users = [_user(i) for i in range(users)]
        self.page_size = page_size
        self.issue_token(value=STATIC_TOKEN)
        self.repeat_cursor = False
        self.drop_query_in_next = False
        self.foreign_next_host: str | None = None
        self.quota: tuple[int, int, float] | None = None
        """(limit, remaining, reset epoch) sent as X-RateLimit-* headers."""

    # -- auth ----------------------------------------------------------------

    def unauthorized(self, request: EmulatorRequest) -> EmulatorResponse | None:
        token = self.lookup_token(request.bearer_token())
        if token is None:
            return json_response({"error": "invalid_auth"}, status=401)
        if token.expired():
            return json_response({"error": "token_expired"}, status=401)
        return None

    def _window(self, start: int, size: int) -> list[dict[str, Any]]:
        return self.users[start : start + size]

    def _quota_headers(self, response: EmulatorResponse) -> EmulatorResponse:
        if self.quota is not None:
            limit, remaining, reset = self.quota
            response.headers.update(
                {
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(int(reset)),
                }
            )
        return response

    # -- cursor in the body --------------------------------------------------

    @route("GET", "/api/users.list", endpoint="users.list")
    def users_list(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self.unauthorized(request)
        if refused is not None:
            return refused
        start = int(request.query.get("cursor") or 0)
        limit = int(request.query.get("limit") or self.page_size)
        members = self._window(start, limit)
        following = start + limit
        cursor = str(following) if following < len(self.users) else ""
        if self.repeat_cursor and start > 0:
            cursor = str(start)
        body = {"ok": True, "members": members, "response_metadata": {"next_cursor": cursor}}
        return self._quota_headers(json_response(body))

    @route("POST", "/api/users.list", endpoint="users.list.post")
    def users_list_post(self, request: EmulatorRequest) -> EmulatorResponse:
        form = request.params()
        start = int(form.get("cursor") or 0)
        limit = int(form.get("limit") or self.page_size)
        following = start + limit
        cursor = str(following) if following < len(self.users) else ""
        body = {
            "ok": True,
            "members": self._window(start, limit),
            "response_metadata": {"next_cursor": cursor},
        }
        return json_response(body)

    @route("GET", "/html-error", endpoint="html.error")
    def html_error(self, request: EmulatorRequest) -> EmulatorResponse:
        status = int(request.query.get("status") or 502)
        return EmulatorResponse(
            status=status,
            raw_body=b"<html><body>Bad gateway</body></html>",
            headers={"Content-Type": "text/html"},
        )

    @route("DELETE", "/things/{thing_id}", endpoint="things.delete")
    def delete_thing(self, request: EmulatorRequest) -> EmulatorResponse:
        return EmulatorResponse(status=204)

    @route("POST", "/api/rpc.fail", endpoint="rpc.fail")
    def rpc_fail(self, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"ok": False, "error": request.params().get("error", "boom")})

    # -- Link header ---------------------------------------------------------

    @route("GET", "/v1/people", endpoint="people")
    def people(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self.unauthorized(request)
        if refused is not None:
            return refused
        if request.query.get("max") in (None, "", "null"):
            return json_response({"message": "max is required"}, status=400)
        size = int(request.query["max"])
        start = int(request.query.get("after") or 0)
        response = json_response({"items": self._window(start, size)})
        if start + size < len(self.users):
            query = {"after": start + size}
            if not self.drop_query_in_next:
                query = {"max": size, **query}
            host = self.foreign_next_host or self.base_url
            response.headers["Link"] = f'<{host}/v1/people?{urlencode(query)}>; rel="next"'
        return response

    # -- HAL -----------------------------------------------------------------

    @route("GET", "/hal/users", endpoint="hal.users")
    def hal_users(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self.unauthorized(request)
        if refused is not None:
            return refused
        page = int(request.query.get("page") or 1)
        size = int(request.query.get("per_page") or self.page_size)
        start = (page - 1) * size
        links: dict[str, Any] = {"self": {"href": f"/hal/users?page={page}&per_page={size}"}}
        if start + size < len(self.users):
            nxt = page if self.repeat_cursor and page > 1 else page + 1
            links["next"] = {"href": f"/hal/users?page={nxt}&per_page={size}"}
        body = {"_embedded": {"users": self._window(start, size)}, "_links": links}
        return json_response(body)

    # -- page numbers and offsets -------------------------------------------

    @route("GET", "/paged/users", endpoint="paged.users")
    def paged_users(self, request: EmulatorRequest) -> EmulatorResponse:
        page = int(request.query["page"])
        size = int(request.query["per_page"])
        return json_response({"users": self._window((page - 1) * size, size)})

    @route("GET", "/offset/users", endpoint="offset.users")
    def offset_users(self, request: EmulatorRequest) -> EmulatorResponse:
        offset = int(request.query["offset"])
        limit = int(request.query["limit"])
        return json_response({"data": self._window(offset, limit)})

    # -- misc ----------------------------------------------------------------

    @route("GET", "/echo", endpoint="echo")
    def echo(self, request: EmulatorRequest) -> EmulatorResponse:
        refused = self.unauthorized(request)
        if refused is not None:
            return refused
        return self._quota_headers(
            json_response({"headers": dict(request.headers), "query": dict(request.query)})
        )

    @route("POST", "/echo", endpoint="echo.post")
    def echo_post(self, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"received": request.params()})

    @route("GET", "/open", endpoint="open")
    def open_endpoint(self, request: EmulatorRequest) -> EmulatorResponse:
        return json_response({"ok": True})

    @route("GET", "/missing", endpoint="missing")
    def missing(self, request: EmulatorRequest) -> EmulatorResponse:
        return json_response(
            {"error": "not_found", "request_id": "req-77"},
            status=404,
            **{"X-Request-Id": "req-77"},
        )


class Recorder:
    """A stand-in for ``time.sleep`` that records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)

    @property
    def total(self) -> float:
        return sum(self.waits)
