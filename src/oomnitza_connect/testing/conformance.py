"""The conformance suite every vendor plugin subclasses.

A plugin's test module declares one class::

    from oomnitza_connect.testing.conformance import ConnectorConformance
    from oomnitza_connect_acme import vendor

    class TestAcmeConformance(ConnectorConformance):
        plugin = vendor
        vendor = "acme"
        settings = {"page_size": "5"}      # small pages, so pagination is exercised

        def good_credential(self, emulator):
            return Credential(name="good", vendor="acme", kind=AuthKind.API_KEY,
                              token=emulator.api_token)

        def bad_credential(self, emulator):
            return Credential(name="bad", vendor="acme", kind=AuthKind.API_KEY,
                              token="not-a-real-token")

and inherits every test below. The base class's name does not start with
``Test``, so pytest collects only the subclasses.

What a subclass must provide:

``plugin``
    The object holding the hook implementations: the vendor object (or a
    hand-written plugin module).
``vendor``
    The connector name the plugin registers.
``good_credential(emulator)`` and ``bad_credential(emulator)``
    A credential the emulator accepts, and one it refuses.

What a subclass may change:

``make_emulator(users)``
    Build a (not yet started) emulator serving *users* users. The default
    calls the vendor object's ``create_emulator`` with
    ``{"users": users, "max_page_size": page_size}``. The emulator must
    implement :meth:`~oomnitza_connect.testing.emulator.Emulator.expected_user_ids`.
``settings``
    Global settings passed to ``authenticate``; use them to make pages small.
``user_count`` / ``page_size``
    How many users the emulator serves (default 23) and the page size a
    vendor should be held to (default 5), so that listing takes several pages.
``list_users_endpoint``
    The emulator endpoint name of the list call; faults are injected there
    (``None`` injects on whatever request comes next).
``paginated``
    Left unset, it is read from the vendor object: ``False`` for a
    :class:`~oomnitza_connect.vendors.RestVendor` whose users endpoint is
    :class:`~oomnitza_connect.vendors.SinglePage` (Intercom's ``/admins``),
    else ``True``. A single-page vendor is held to exactly one list request
    (no page is followed, none repeated), and faults hit that request instead
    of the second. Set it only for a hand-written plugin: ``False`` on a
    vendor whose description pages would excuse it from the paging tests, and
    raises :class:`WeakenedConformanceError`.
``preset_variables``
    Sample values for preset variables, by variable name (default ``"x"``).
``client_options(emulator)``
    The :class:`~oomnitza_connect.transport.http.ClientOptions` used against the emulator.

The standard tests cannot be weakened silently (as LangChain's standard tests
guard themselves): a subclass that deletes a standard test or overrides one
fails at collection, unless the override is marked
``@pytest.mark.xfail(reason="why")``, so the reason is on record::

    @pytest.mark.xfail(reason="Acme has no way to refuse a token", strict=True)
    def test_authenticate_fails_cleanly_with_a_bad_credential(self, connector, emulator):
        super().test_authenticate_fails_cleanly_with_a_bad_credential(connector, emulator)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import attrs
import pytest

from ..connectors import Connector, get_connector
from ..errors import (
    AuthenticationError,
    OomnitzaConnectError,
    PluginError,
    RateLimitError,
    TransportError,
    VendorAPIError,
)
from ..models import (
    STANDARD_PERSON_FIELDS,
    UNIQUE_STANDARD_FIELDS,
    Credential,
    IntegrationSettings,
    Preset,
    SyncSession,
    SyncStatus,
    UserSelection,
    VendorRecord,
)
from ..plugins import get_plugin_manager, register_plugin
from ..sync.mapping import normalize_target
from ..templating import UndefinedVariableError, render_value, variables_of
from ..transport.http import ClientOptions
from ..vendors.base import RestVendor
from ..vendors.description import SinglePage
from ..vendors.session import VendorSession
from .emulator import Emulator, Fault

__all__ = ["ConnectorConformance", "render_preset_request"]

_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
# Names a mapping expression may use besides the record's fields (see mapping.py).
_EXPRESSION_NAMES = frozenset(
    {"id", "raw", "fields", "sync_time", "api_version", "vendor", "default_role", "settings"}
)


def render_preset_request(preset: Preset, variables: Mapping[str, Any]) -> dict[str, Any]:
    """Render every template of *preset* (path, query, headers, body) with *variables*.

    :raises UndefinedVariableError: a template uses a variable not in *variables*.
    """
    return {
        "method": preset.method,
        "path": render_value(preset.path, variables),
        "query": {key: render_value(v, variables) for key, v in preset.query.items()},
        "headers": {key: render_value(v, variables) for key, v in preset.headers.items()},
        "body": _render_leaves(preset.body, variables),
    }


def _render_leaves(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return render_value(value, variables)
    if isinstance(value, Mapping):
        return {key: _render_leaves(item, variables) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_render_leaves(item, variables) for item in value]
    return value


def _preset_templates(preset: Preset) -> Iterator[str]:
    yield preset.path
    yield from preset.query.values()
    yield from preset.headers.values()
    stack = [preset.body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)


class WeakenedConformanceError(TypeError):
    """A subclass deleted or overrode a standard conformance test without an xfail reason."""


def _xfail_reason(test: Any) -> str | None:
    for mark in getattr(test, "pytestmark", ()):
        if mark.name == "xfail":
            reason = mark.kwargs.get("reason") or (mark.args[1] if len(mark.args) > 1 else None)
            if isinstance(reason, str) and reason.strip():
                return reason
    return None


def _describes_paging(plugin: object) -> bool | None:
    """Whether *plugin*'s description pages its users; ``None`` without a description."""
    if not isinstance(plugin, RestVendor):
        return None
    return not isinstance(plugin.users.paging, SinglePage)


class ConnectorConformance:
    """Tests every vendor plugin must pass; subclass it as ``Test<Vendor>Conformance``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        described = _describes_paging(getattr(cls, "plugin", None))
        if cls.paginated is False and described is True:
            raise WeakenedConformanceError(
                f"{cls.__name__} sets paginated = False, but its vendor's users endpoint "
                "pages; leave paginated unset (it is read from the description)"
            )
        if cls.paginated is None and described is not None:
            cls.paginated = described
        standard = [name for name in vars(ConnectorConformance) if name.startswith("test_")]
        for name in standard:
            if name not in vars(cls):
                continue
            replacement = vars(cls)[name]
            if not callable(replacement):
                raise WeakenedConformanceError(
                    f"{cls.__name__} deletes the standard conformance test {name}; mark an "
                    "override @pytest.mark.xfail(reason=...) instead, so the reason is on record"
                )
            if _xfail_reason(replacement) is None:
                raise WeakenedConformanceError(
                    f"{cls.__name__} overrides the standard conformance test {name}; a "
                    "standard test may only be replaced by one marked "
                    "@pytest.mark.xfail(reason=...), so the reason is on record"
                )

    plugin: ClassVar[ModuleType | object]
    vendor: ClassVar[str]
    settings: ClassVar[Mapping[str, str]] = {}
    user_count: ClassVar[int] = 23
    page_size: ClassVar[int] = 5
    list_users_endpoint: ClassVar[str | None] = None
    paginated: ClassVar[bool | None] = None
    """``None``: read from the vendor's description (``True`` when there is none)."""
    preset_variables: ClassVar[Mapping[str, Any]] = {}
    errors_carry_request_id: ClassVar[bool] = True
    """Whether the vendor's errors carry a request or tracking id (a header or a body
    field) for its support desk; ``False`` only for an API that documents none."""
    errors_carry_code: ClassVar[bool] = True
    """Whether the vendor's error bodies carry an error code of its own; ``False``
    only for an API whose errors have a message and no code."""

    # -- what a subclass provides -------------------------------------------

    def good_credential(self, emulator: Emulator) -> Credential:
        """Return a credential *emulator* accepts."""
        raise NotImplementedError(f"{type(self).__name__} must define good_credential(emulator)")

    def bad_credential(self, emulator: Emulator) -> Credential:
        """Return a credential *emulator* refuses."""
        raise NotImplementedError(f"{type(self).__name__} must define bad_credential(emulator)")

    def make_emulator(self, users: int) -> Emulator:
        """Return a new, not yet started emulator serving *users* users."""
        try:
            emulator: Emulator = get_connector(self.vendor).create_emulator(
                users=users, max_page_size=self.page_size
            )
            return emulator
        except PluginError as exc:
            pytest.fail(f"{exc} Implement create_emulator or override make_emulator().")

    def client_options(self, emulator: Emulator) -> ClientOptions:
        """Return the client options used against *emulator* (short waits keep tests fast)."""
        return ClientOptions(
            base_url=emulator.base_url,
            connect_timeout=2.0,
            read_timeout=5.0,
            max_single_wait=3.0,
            max_total_wait=10.0,
        )

    # -- fixtures -------------------------------------------------------------

    @pytest.fixture(autouse=True)
    def _registered_plugin(self, isolated_plugins: None) -> Iterator[None]:
        # Isolated: the plugin under test may be installed too (an editable
        # install), and the suite must see it once, and nothing else.
        with register_plugin(self.plugin):
            yield

    @pytest.fixture
    def connector(self) -> Connector:
        return get_connector(self.vendor)

    @pytest.fixture
    def emulator(self) -> Iterator[Emulator]:
        with self.make_emulator(self.user_count) as running:
            yield running

    @pytest.fixture
    def session(self, connector: Connector, emulator: Emulator) -> Iterator[VendorSession]:
        opened = connector.authenticate(
            self.good_credential(emulator),
            self.settings,
            options=self.client_options(emulator),
        )
        with opened:
            yield opened

    # -- vendor description ---------------------------------------------------

    def test_vendor_info_is_well_formed(self, connector: Connector) -> None:
        info = connector.info
        assert info.name == self.vendor
        assert info.display_name.strip(), "display_name is empty"
        assert info.base_url.startswith("https://"), f"base_url {info.base_url!r} is not https"
        assert info.auth_kinds, "auth_kinds is empty: say how the connector authenticates"
        keys = [spec.key for spec in info.fields]
        assert len(keys) == len(set(keys)), f"field keys repeat: {keys}"
        for setting in info.global_settings:
            if setting.choices and setting.default is not None:
                assert setting.default in setting.choices, (
                    f"setting '{setting.key}' defaults to {setting.default!r}, "
                    f"not one of {setting.choices}"
                )

    def test_standard_mapping_uses_declared_fields(self, connector: Connector) -> None:
        info = connector.info
        keys = {spec.key for spec in info.fields}
        for mapping in info.standard_mapping:
            if mapping.source is not None:
                assert mapping.source in keys, (
                    f"standard mapping of '{mapping.target}' reads '{mapping.source}', "
                    f"which is not a declared field (declared: {sorted(keys)})"
                )
            else:
                assert mapping.expression is not None
                unknown = variables_of(mapping.expression) - keys - _EXPRESSION_NAMES
                assert not unknown, (
                    f"standard mapping of '{mapping.target}' uses undeclared {sorted(unknown)}"
                )
        targets = {mapping.target for mapping in info.standard_mapping}
        assert {"username", "email"} <= targets, (
            f"the standard mapping must fill username and email (it fills {sorted(targets)})"
        )
        assert any(
            mapping.unique or mapping.target in UNIQUE_STANDARD_FIELDS
            for mapping in info.standard_mapping
        ), "no standard mapping target can serve as a unique sync key"

    def test_rate_budgets_are_declared(self, connector: Connector) -> None:
        budgets = connector.info.rate_budgets
        assert budgets, "declare at least one RateBudget (use endpoint '*' for a global one)"
        for budget in budgets:
            assert budget.requests_per_minute > 0, f"budget {budget} has no positive rate"
            assert budget.burst >= 1, f"budget {budget} has a burst below 1"

    def test_hooks_answer_only_for_their_own_vendor(self) -> None:
        other = f"not-{self.vendor}"
        manager = get_plugin_manager()
        for hook_name, arguments in (
            ("workflow_presets", {"vendor": other}),
            ("list_users", {"vendor": other, "session": None}),
            ("list_last_logins", {"vendor": other, "session": None}),
        ):
            for impl in getattr(manager.hook, hook_name).get_hookimpls():
                if impl.plugin is not self.plugin:
                    continue
                assert impl.function(**arguments) in (None, []), (
                    f"{hook_name} answered for vendor '{other}'; return None for other vendors"
                )

    # -- authentication -------------------------------------------------------

    def test_authenticate_succeeds_with_a_good_credential(
        self, connector: Connector, emulator: Emulator
    ) -> None:
        with connector.authenticate(
            self.good_credential(emulator), self.settings, options=self.client_options(emulator)
        ) as session:
            assert isinstance(session, VendorSession)
            assert session.vendor == self.vendor

    def test_authenticate_fails_cleanly_with_a_bad_credential(
        self, connector: Connector, emulator: Emulator
    ) -> None:
        credential = self.bad_credential(emulator)
        with pytest.raises(AuthenticationError) as caught:
            connector.authenticate(credential, self.settings, options=self.client_options(emulator))
        message = str(caught.value)
        assert message.strip(), "the AuthenticationError has no message"
        for secret in (
            *credential.secret_values(),
            *self.good_credential(emulator).secret_values(),
        ):
            assert secret not in message, "a secret appears in the error message"
            assert secret not in repr(caught.value.args), "a secret appears in the error's args"

    def test_credentials_do_not_show_their_secrets(self, emulator: Emulator) -> None:
        credential = self.good_credential(emulator)
        secrets = credential.secret_values()
        assert secrets, "the good credential holds no secret; is it built from Secret fields?"
        for shown in (repr(credential), str(credential), f"{credential}"):
            for secret in secrets:
                assert secret not in shown

    # -- listing users --------------------------------------------------------

    def test_list_users_returns_every_user_exactly_once(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        before = len(emulator.requests)
        ids = [record.id for record in connector.list_users(session)]
        requests_made = len(emulator.requests) - before
        expected = emulator.expected_user_ids()
        assert len(expected) > self.page_size, "serve more users than fit on one page"
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        assert not duplicates, f"users listed more than once: {duplicates[:10]}"
        missing = sorted(expected - set(ids))[:10]
        unexpected = sorted(set(ids) - expected)[:10]
        assert set(ids) == expected, f"missing: {missing}, unexpected: {unexpected}"
        if self._single_page:
            assert requests_made == 1, (
                f"the vendor lists its users in one answer, but listing took {requests_made} "
                "requests"
            )
        else:
            assert requests_made >= 2, (
                "listing took a single request, so pagination was not exercised; make pages "
                "small with `settings` or honour the 'max_page_size' emulator option"
            )

    def test_every_page_is_decoded_once(
        self,
        connector: Connector,
        session: VendorSession,
        emulator: Emulator,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # Through the one decoding point (orjson when installed), and not again
        # by an error parser reading the same body: one decode per page served.
        from .. import decoding

        decoded: list[int] = []
        loads = decoding.loads

        def counting(content: bytes | str) -> Any:
            decoded.append(len(content))
            return loads(content)

        monkeypatch.setattr(decoding, "loads", counting)
        before = len(emulator.requests)
        listed = sum(1 for _ in connector.list_users(session))
        requests_made = len(emulator.requests) - before
        assert listed, "the emulator listed no users"
        assert len(decoded) == requests_made, (
            f"listing made {requests_made} requests and decoded {len(decoded)} JSON bodies "
            "through oomnitza_connect.decoding; decode each page once, through it "
            "(the client's answer, or decode_json(response) in an error parser)"
        )

    def test_list_users_is_lazy(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        before = len(emulator.requests)
        records = connector.list_users(session)
        first = next(iter(records))
        assert isinstance(first, VendorRecord)
        assert len(emulator.requests) - before == 1, (
            "list_users fetched more than one page before the first record was used"
        )

    def test_records_have_ids_and_declared_fields(
        self, connector: Connector, session: VendorSession
    ) -> None:
        declared = {spec.key for spec in connector.info.fields}
        seen: set[str] = set()
        for record in connector.list_users(session):
            assert isinstance(record, VendorRecord)
            assert record.vendor == self.vendor
            assert isinstance(record.id, str), f"record id {record.id!r} is not a string"
            assert record.id, "a record has an empty id"
            undeclared = set(record.fields) - declared
            assert not undeclared, f"record {record.id} has undeclared fields {sorted(undeclared)}"
            seen.update(key for key, value in record.fields.items() if value is not None)
        sources = {m.source for m in connector.info.standard_mapping if m.source is not None}
        assert sources <= seen, (
            f"no record ever has a value for standard mapping sources {sorted(sources - seen)}"
        )

    def test_records_map_to_username_and_email(
        self, connector: Connector, session: VendorSession
    ) -> None:
        mapped = [connector.map_record(record) for record in connector.list_users(session)]
        assert mapped
        for person in mapped:
            assert "username" in person, f"no username in the mapped {sorted(person)}"
            assert "email" in person, f"no email in the mapped {sorted(person)}"
        complete = [p for p in mapped if p["username"] and p["email"]]
        assert complete, "no record mapped to a non-empty username and email"

    def test_last_logins_if_offered_are_one_per_known_user(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        logins = connector.list_last_logins(session)
        if logins is None:
            pytest.skip(f"{self.vendor} offers no last logins (list_last_logins returned None)")
        seen: set[str] = set()
        expected = emulator.expected_user_ids()
        for item in logins:
            user_id = item["vendor_user_id"]
            assert user_id in expected, f"last login for unknown user {user_id!r}"
            assert user_id not in seen, f"more than one last login for {user_id!r}"
            seen.add(user_id)
            when = item["last_login"]
            assert isinstance(when, datetime), f"last_login of {user_id} is {when!r}"
            assert when.tzinfo is not None, f"last_login of {user_id} has no time zone"

    # -- presets --------------------------------------------------------------

    def test_presets_are_well_formed(self, connector: Connector) -> None:
        for preset in connector.presets():
            assert preset.vendor == self.vendor
            assert preset.method.upper() in _HTTP_METHODS, f"{preset.name}: {preset.method}"
            assert preset.description.strip(), f"preset '{preset.name}' has no description"
            used = set().union(*(variables_of(t) for t in _preset_templates(preset)))
            undeclared = used - set(preset.variables)
            assert not undeclared, (
                f"preset '{preset.name}' uses undeclared variables {sorted(undeclared)}"
            )

    def test_presets_render_with_every_variable(self, connector: Connector) -> None:
        for preset in connector.presets():
            variables = {name: self.preset_variables.get(name, "x") for name in preset.variables}
            rendered = render_preset_request(preset, variables)
            assert isinstance(rendered["path"], str)
            assert "{{" not in rendered["path"], f"preset '{preset.name}' left a template"

    def test_presets_name_a_missing_variable(self, connector: Connector) -> None:
        for preset in connector.presets():
            used = set().union(*(variables_of(t) for t in _preset_templates(preset)))
            for missing in sorted(used):
                variables = {
                    name: self.preset_variables.get(name, "x")
                    for name in preset.variables
                    if name != missing
                }
                with pytest.raises(UndefinedVariableError) as caught:
                    render_preset_request(preset, variables)
                assert caught.value.name == missing
                assert f"'{missing}'" in str(caught.value)

    # -- faults ---------------------------------------------------------------

    @property
    def _fault_after(self) -> int:
        """Requests let through before a fault: mid-listing, or the only list request."""
        return 0 if self._single_page else 1

    @property
    def _single_page(self) -> bool:
        return self.paginated is False

    def _list_survives_or_reports(
        self,
        connector: Connector,
        session: VendorSession,
        emulator: Emulator,
        reported_as: tuple[type[BaseException], ...],
    ) -> str:
        """List every user with a fault planned; return "survived" or "reported"."""
        try:
            ids = [record.id for record in connector.list_users(session)]
        except reported_as as exc:
            message = str(exc)
            assert message.strip(), "the error has no message"
            for secret in session.credential.secret_values():
                assert secret not in message, "a secret appears in the error message"
            assert emulator.faults.pending() == 0, "the error came before the planned fault"
            return "reported"
        assert emulator.faults.pending() == 0, "the planned fault never fired"
        assert sorted(ids) == sorted(emulator.expected_user_ids()), (
            "after surviving the fault, the listing is incomplete or has duplicates"
        )
        return "survived"

    def test_rate_limit_with_retry_after_is_survived_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.rate_limited(retry_after=1),
            endpoint=self.list_users_endpoint,
            after=self._fault_after,
        )
        outcome = self._list_survives_or_reports(connector, session, emulator, (VendorAPIError,))
        if outcome == "reported":
            pytest.fail("a single 429 with Retry-After: 1 should be retried, not reported")

    def test_rate_limit_with_http_date_is_survived_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.rate_limited(retry_after=1, as_http_date=True),
            endpoint=self.list_users_endpoint,
            after=self._fault_after,
        )
        self._list_survives_or_reports(connector, session, emulator, (VendorAPIError,))

    def test_service_unavailable_is_survived_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.server_error(503), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        self._list_survives_or_reports(connector, session, emulator, (VendorAPIError,))

    def test_connection_reset_is_survived_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.connection_reset(), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        self._list_survives_or_reports(connector, session, emulator, (TransportError,))

    def test_malformed_json_is_reported_clearly(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.malformed_json(), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        # A raw JSONDecodeError would be a bare traceback; it must be an SDK error.
        self._list_survives_or_reports(connector, session, emulator, (OomnitzaConnectError,))

    def test_expired_token_is_refreshed_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.expire_tokens(), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        self._list_survives_or_reports(
            connector, session, emulator, (AuthenticationError, VendorAPIError)
        )

    def test_a_vendor_error_names_the_vendor_status_code_and_request_id(
        self, connector: Connector, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.server_error(500),
            endpoint=self.list_users_endpoint,
            after=self._fault_after,
            times=-1,
        )
        with (
            self._session_with(connector, emulator, max_retries=0) as session,
            pytest.raises(VendorAPIError) as caught,
        ):
            list(connector.list_users(session))
        error, text = caught.value, str(caught.value)
        assert error.vendor == self.vendor, "the error does not name its vendor"
        assert error.status == 500, "the error does not keep the HTTP status"
        assert "HTTP 500" in text, "the message does not say the HTTP status"
        if self.errors_carry_code:
            assert error.code, "the vendor's error code is not read from its error body"
            assert error.code in text, "the message does not name the vendor's error code"
        if self.errors_carry_request_id:
            assert error.request_id, (
                "the error has no request id: read the header or body field the vendor "
                "sends it in (VendorDescription.request_id_headers), and have the emulator "
                "send one (Emulator.request_id_header); set errors_carry_request_id = False "
                "only for an API that documents none"
            )
            assert error.request_id in text, "the message does not name the request id"

    # -- the fault matrix (issue 14) --------------------------------------------------
    #
    # Every fault ends with every user, or with one clear typed error; a sync that
    # meets bad records ends with each bad record failing alone and nothing lost or
    # doubled in the store.

    def _session_with(self, connector: Connector, emulator: Emulator, **changes: Any) -> Any:
        options = attrs.evolve(self.client_options(emulator), **changes)
        return connector.authenticate(
            self.good_credential(emulator), self.settings, options=options
        )

    def test_a_429_storm_is_survived_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.rate_limited(retry_after=1),
            endpoint=self.list_users_endpoint,
            after=self._fault_after,
            times=3,
        )
        self._list_survives_or_reports(connector, session, emulator, (RateLimitError,))

    def test_a_burst_of_server_errors_is_survived_or_reported(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.server_error(502),
            endpoint=self.list_users_endpoint,
            after=self._fault_after,
            times=2,
        )
        self._list_survives_or_reports(connector, session, emulator, (VendorAPIError,))

    def test_a_slow_answer_is_survived_or_reported(
        self, connector: Connector, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.slow(1.5), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        with self._session_with(connector, emulator, read_timeout=0.5) as session:
            self._list_survives_or_reports(connector, session, emulator, (TransportError,))

    def test_a_trickling_answer_ends_at_the_total_deadline(
        self, connector: Connector, emulator: Emulator
    ) -> None:
        emulator.faults.add(
            Fault.trickle(0.2), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        started = time.monotonic()
        with self._session_with(connector, emulator, read_timeout=2.0, total_timeout=1.0) as s:
            self._list_survives_or_reports(connector, s, emulator, (TransportError,))
        assert time.monotonic() - started < 30, "a trickled answer held the listing"

    def test_a_repeated_page_is_not_followed_forever_nor_doubled(
        self, connector: Connector, session: VendorSession, emulator: Emulator
    ) -> None:
        emulator.faults.add(Fault.repeat_answer(), endpoint=self.list_users_endpoint, after=1)
        if self._single_page:
            # One answer is the whole list: nothing may be fetched after it to repeat.
            ids = [record.id for record in connector.list_users(session)]
            assert sorted(ids) == sorted(emulator.expected_user_ids())
            assert emulator.faults.pending() == 1, "a single-page listing asked for a second page"
            return
        self._list_survives_or_reports(connector, session, emulator, (OomnitzaConnectError,))

    # -- whole syncs with bad and duplicate records ------------------------------------

    def integration_settings(self, connector: Connector) -> IntegrationSettings:
        """The integration the sync tests run: the vendor's standard mapping, linked as SaaS
        users so the store says which vendor user each person came from."""
        info = connector.info
        unique = [
            m.target
            for m in info.standard_mapping
            if m.unique and normalize_target(m.target) not in STANDARD_PERSON_FIELDS
        ]
        return IntegrationSettings(
            name=f"{self.vendor}-conformance",
            vendor=self.vendor,
            credential="unused",
            settings=dict(self.settings),
            sync_key=unique[0] if unique else "email",
            default_role="Employee",
            selection=UserSelection.USERS_AND_SAAS,
        )

    def _sync(
        self, connector: Connector, emulator: Emulator, db: Path
    ) -> tuple[SyncSession, list[str], int]:
        from ..store.sqlite import SQLiteStore
        from ..sync.engine import run_sync

        with SQLiteStore(db) as store:
            session = run_sync(
                self.integration_settings(connector),
                credential=self.good_credential(emulator),
                store=store,
                connector=connector,
                options=self.client_options(emulator),
            )
            linked = [user.vendor_user_id for user in store.iter_saas_users(vendor=self.vendor)]
            people = store.count_people()
        return session, linked, people

    def test_bad_records_fail_alone_and_the_rest_sync(
        self, connector: Connector, emulator: Emulator, tmp_path: Path
    ) -> None:
        clean, baseline, _ = self._sync(connector, emulator, tmp_path / "clean.db")
        assert clean.status is SyncStatus.SUCCEEDED, clean.message

        def without_id(user: Any) -> Any:
            return {k: v for k, v in user.items() if k != "id"}

        def lone_surrogates(user: Any) -> Any:
            return _replace_text(user, "lone \ud800 surrogate", keep_id=True)

        def huge(user: Any) -> Any:
            return _replace_text(user, "h" * 300_000, keep_id=True)

        def wrong_types(user: Any) -> Any:
            return {k: (v if k == "id" else ["wrong", {"type": 1}]) for k, v in user.items()}

        emulator.faults.add(
            Fault.corrupt_records(
                None, ["not", "a", "user"], without_id, lone_surrogates, huge, wrong_types
            ),
            endpoint=self.list_users_endpoint,
            after=self._fault_after,
        )
        session, linked, people = self._sync(connector, emulator, tmp_path / "bad.db")
        assert emulator.faults.pending() == 0, "the planned fault never fired"
        assert session.status is not SyncStatus.FAILED, (
            f"bad records failed the whole run: {session.message}"
        )
        assert len(linked) == len(set(linked)), "a user was written twice"
        assert people == len(linked), "people and links disagree: something was doubled"
        corrupted = emulator.corrupted_ids
        untouched = set(baseline) - corrupted
        assert untouched <= set(linked), "users next to the bad records were lost"
        assert set(linked) <= set(baseline)
        # The first three (null, a list, no id) cannot sync; the page may be short.
        certain = min(emulator.corrupted_count, 3)
        assert certain >= 1, "the page had no user to replace"
        assert session.counts.failed >= certain, (
            f"null, a list and a user without id must each fail alone: {session.errors}"
        )
        for error in session.errors:
            assert error.reason.strip(), "a record failed without a reason"

    def test_duplicate_sync_keys_are_written_once(
        self, connector: Connector, emulator: Emulator, tmp_path: Path
    ) -> None:
        clean, baseline, _ = self._sync(connector, emulator, tmp_path / "clean.db")
        assert clean.status is SyncStatus.SUCCEEDED, clean.message
        emulator.faults.add(
            Fault.duplicate_record(), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        session, linked, people = self._sync(connector, emulator, tmp_path / "dup.db")
        assert emulator.faults.pending() == 0, "the planned fault never fired"
        assert sorted(linked) == sorted(baseline), "a user was lost or doubled"
        assert people == len(baseline)
        # The plugin may drop the copy itself; if it passes it on, the copy fails alone.
        assert session.counts.failed <= 1, session.errors
        for error in session.errors:
            assert "already has" in error.reason, error.reason

    # -- credentials that change under the run ------------------------------------------

    def rotating_credential(self, emulator: Emulator) -> Credential | None:
        """An OAuth2 credential whose refresh token rotates; ``None``: the vendor has none."""
        return None

    def credential_missing_scope(self, emulator: Emulator) -> Credential | None:
        """A credential the vendor accepts but without a scope listing needs; ``None``: n/a."""
        return None

    def test_a_rotated_refresh_token_survives_expiry_mid_run(
        self,
        connector: Connector,
        emulator: Emulator,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from ..auth.credentials import CredentialStore

        credential = self.rotating_credential(emulator)
        if credential is None:
            pytest.skip("the vendor's credentials do not rotate (rotating_credential is None)")
        # Plugins save rotated tokens through the default store: keep it here.
        monkeypatch.setenv("OOMNITZA_CONNECT_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("OOMNITZA_CONNECT_KEYRING", "0")
        store = CredentialStore(tmp_path / "home", keyring_backend=False)
        store.save(credential)
        emulator.faults.add(
            Fault.expire_tokens(), endpoint=self.list_users_endpoint, after=self._fault_after
        )
        with connector.authenticate(
            store.get(credential.name), self.settings, options=self.client_options(emulator)
        ) as session:
            ids = [record.id for record in connector.list_users(session)]
        assert sorted(ids) == sorted(emulator.expected_user_ids())
        assert store.get(credential.name).refresh_token != credential.refresh_token, (
            "the rotated refresh token was not saved"
        )

    def test_a_missing_scope_is_one_clear_error(
        self, connector: Connector, emulator: Emulator
    ) -> None:
        credential = self.credential_missing_scope(emulator)
        if credential is None:
            pytest.skip("the vendor has no scope to leave out (credential_missing_scope is None)")

        def listing() -> None:
            options = self.client_options(emulator)
            with connector.authenticate(credential, self.settings, options=options) as opened:
                list(connector.list_users(opened))

        with pytest.raises(AuthenticationError) as refused:
            listing()
        assert "scope" in str(refused.value).lower()


def _replace_text(value: Any, text: str, *, keep_id: bool = False) -> Any:
    """*value* with every string (the id too, unless *keep_id*) replaced by *text*."""
    if isinstance(value, Mapping):
        return {
            k: (v if keep_id and k == "id" else _replace_text(v, text, keep_id=keep_id))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_replace_text(item, text, keep_id=keep_id) for item in value]
    return text if isinstance(value, str) else value
