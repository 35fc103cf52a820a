"""The Python API for scripts and notebooks.

>>> import oomnitza_connect as oc
>>> cred = oc.Credential(name="slack", vendor="slack", kind=oc.AuthKind.API_KEY, token="xoxb-…")
>>> users = list(oc.list_users("slack", cred))               # VendorRecord objects
>>> settings = oc.load_integration("slack.toml")
>>> with oc.open_store() as store:
...     session = oc.run_sync(settings, credential=cred, store=store)
...     people = oc.to_dataframe(store.iter_people(vendor="slack"))   # needs pandas

Everything here is also importable from :mod:`oomnitza_connect`. Each command of
the command line has its Python call here or beside it: docs/cli.md has the table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .connectors import Connector, get_connector
from .errors import ConfigurationError, MissingExtraError
from .models import Credential, IntegrationSettings, Person, SyncSession, VendorRecord
from .store.paths import default_db_path
from .store.sqlite import SQLiteStore
from .sync.engine import SyncPhase, SyncProgress, run_sync
from .sync.integrations import check_ledger, draft_problems, integration_entry, load_integration
from .sync.smart_mapping import MappingSuggestion, suggest_mapping
from .transport.http import ClientOptions

if TYPE_CHECKING:
    from .auth.credentials import CredentialStore

__all__ = [
    "MappingSuggestion",
    "MissingExtraError",
    "SyncPhase",
    "SyncProgress",
    "default_db_path",
    "draft_problems",
    "integration_template",
    "launch_integration",
    "list_users",
    "load_integration",
    "login",
    "open_store",
    "run_sync",
    "suggest_mapping",
    "to_dataframe",
    "to_rows",
]

DEFAULT_LOGIN_TIMEOUT = 300.0
"""Seconds :func:`login` waits for the browser to come back."""


def open_store(path: str | Path | None = None) -> SQLiteStore:
    """Open the SQLite store at *path* (default: :func:`default_db_path`).

    Use it as a context manager, or call ``close()`` when done.
    """
    return SQLiteStore(path if path is not None else default_db_path())


def list_users(
    vendor: str | Connector,
    credential: Credential,
    settings: IntegrationSettings | Mapping[str, str] | None = None,
    *,
    options: ClientOptions | None = None,
) -> Iterator[VendorRecord]:
    """Yield a vendor's users as records, fetching pages as you iterate.

    :param vendor: a connector name (``"slack"``) or a :class:`Connector`.
    :param credential: the credential to authenticate with.
    :param settings: the vendor's global settings, or a whole integration
        (whose settings and ``base_url`` are used).
    :param options: HTTP options (timeouts, base URL override).
    """
    connector = get_connector(vendor) if isinstance(vendor, str) else vendor
    with connector.authenticate(credential, settings, options=options) as session:
        yield from connector.list_users(session)


def to_rows(items: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Flatten records, people, SaaS users, sessions or mappings into plain dicts."""
    for item in items:
        yield _row(item)


def _row(item: Any) -> dict[str, Any]:
    if isinstance(item, VendorRecord):
        return {"vendor": item.vendor, "id": item.id, **item.fields}
    if isinstance(item, Person):
        row: dict[str, Any] = {
            "id": item.id,
            "sync_key": item.sync_key,
            "sync_value": item.sync_value,
        }
        row.update(item.fields)
        row["vanished_from"] = ", ".join(item.vanished_from)
        row["created_at"] = item.created_at
        row["updated_at"] = item.updated_at
        return row
    if isinstance(item, SyncSession):
        row = {
            "id": item.id,
            "integration": item.integration,
            "vendor": item.vendor,
            "status": item.status.value,
            "test_run": item.test_run,
            "started_at": item.started_at,
            "ended_at": item.ended_at,
        }
        row.update(attrs.asdict(item.counts))
        row["errors"] = len(item.errors)
        row["message"] = item.message
        return row
    if isinstance(item, Mapping):
        return dict(item)
    if attrs.has(type(item)):
        flat: dict[str, Any] = {}
        for name, value in attrs.asdict(item, recurse=False).items():
            if isinstance(value, Mapping):
                flat.update(value)
            else:
                flat[name] = value
        return flat
    return {"value": item}


def to_dataframe(items: Iterable[Any]) -> Any:
    """Return *items* (records, people, sessions, dicts) as a pandas DataFrame.

    :raises MissingExtraError: pandas is not installed; install the extra with
        ``pip install oomnitza-connect[pandas]``.
    """
    try:
        import pandas
    except ImportError:
        raise MissingExtraError(
            "to_dataframe needs pandas, which is not installed; "
            "install it with: pip install oomnitza-connect[pandas]"
        ) from None
    return pandas.DataFrame.from_records(list(to_rows(items)))


def integration_template(vendor: str, *, name: str | None = None, store: Any = None) -> str:
    """Return a commented integration file (TOML) for *vendor* with its standard mapping.

    What ``oomnitza-connect integrations init VENDOR`` prints; write it with
    ``Path("slack.toml").write_text(text)`` and fill in what it leaves blank.

    :param name: the integration's name (default: ``VENDOR-main``, or ``VENDOR-2``,
        ``VENDOR-3`` ... when *store* has that name already).
    :param store: a ledger whose integrations' names are not to be reused.
    :raises UnknownVendorError: no installed plugin provides *vendor*.
    """
    from .sync.integrations import render_integration_template

    taken = [entry.name for entry in store.list_integrations()] if store is not None else []
    return render_integration_template(get_connector(vendor).info, name=name, taken=taken)


def launch_integration(
    file: str | Path,
    store: Any = None,
    *,
    run: bool = True,
    replace: bool = False,
    options: ClientOptions | None = None,
    progress: Callable[[SyncProgress], None] | None = None,
) -> SyncSession | None:
    """Mark the integration in *file* active, so the scheduler runs it, and run it once.

    What ``oomnitza-connect integrations launch FILE`` does; ``schedule run`` and
    the Celery beat then run it on its schedule.

    :param store: the ledger to record it in (default: the default SQLite store,
        closed afterwards).
    :param run: run it now (the session is returned); ``False`` only marks it active.
    :param replace: the store may have this name launched from another file,
        which this one replaces (``--replace``); without it that is refused.
    :raises ConfigurationError: the integration is a draft (the message lists
        what is missing) or invalid, or the store has its name for another
        vendor, or launched from another file (key ``name``).
    """
    from .plugins import vendor_info

    path = Path(file)
    settings = load_integration(path)
    problems = draft_problems(settings, vendor_info(settings.vendor))
    if problems:
        raise ConfigurationError(
            f"{path}: the integration '{settings.name}' is a draft and cannot be launched",
            problems=problems,
        )
    owned = store is None
    ledger = open_store() if store is None else store
    try:
        check_ledger(settings, ledger, source=path, replace=replace)
        ledger.save_integration(integration_entry(settings, path, launched=True))
        if not run:
            return None
        return run_sync(settings, store=ledger, options=options, progress=progress)
    finally:
        if owned:
            ledger.close()


def login(
    credential: str | Credential,
    *,
    settings: Mapping[str, str] | None = None,
    open_url: Callable[[str], None] | None = None,
    port: int | None = None,
    timeout: float = DEFAULT_LOGIN_TIMEOUT,
    authorize_params: Mapping[str, str] | None = None,
    credential_store: CredentialStore | None = None,
) -> Credential:
    """Log in with OAuth2 (authorization code with PKCE) and save the tokens.

    What ``oomnitza-connect auth login CREDENTIAL`` does: the authorize URL is
    opened (``webbrowser.open`` unless *open_url* is given), the vendor
    redirects back to a one-shot server on 127.0.0.1, the code is exchanged
    for tokens, and the updated credential is saved and returned. Without a
    browser on this machine, use :func:`oomnitza_connect.auth.oauth.start_authorization`
    and :func:`~oomnitza_connect.auth.oauth.complete_authorization` (``--paste``).

    :param credential: a stored credential's name, or the credential itself.
    :param settings: vendor global settings used in the OAuth2 URLs.
    :param port: the local redirect port (default: the credential's
        ``redirect_uri`` port, else 8765; 0 picks a free one).
    :param authorize_params: extra query parameters of the authorize URL
        (Slack's ``user_scope``).
    :param credential_store: where the tokens are saved (default: the default store).
    :raises ConfigurationError: the credential is not ``oauth2_authorization_code``
        or has no token or authorize URL.
    """
    from .auth.credentials import default_credential_store
    from .auth.oauth import login_with_loopback

    store = credential_store if credential_store is not None else default_credential_store()
    chosen = store.get(credential) if isinstance(credential, str) else credential
    plan = oauth_login_plan(chosen, settings or {}, port=port)
    return login_with_loopback(
        chosen,
        authorize_url=plan.authorize_url,
        token_url=plan.token_url,
        open_url=open_url or _open_in_browser,
        port=plan.port,
        timeout=timeout,
        options=ClientOptions(ca_bundle=chosen.ca_bundle),
        token_response_parser=plan.token_response_parser,
        credential_store=store,
        extra_params=dict(authorize_params or {}),
    )


def _open_in_browser(url: str) -> None:
    import webbrowser

    webbrowser.open(url)


@attrs.frozen
class OAuthLoginPlan:
    """What an OAuth2 login of one credential needs (its URLs, port and token reader)."""

    token_url: str
    authorize_url: str
    port: int
    token_response_parser: Any


DEFAULT_LOGIN_PORT = 8765
"""The redirect port when neither the caller nor the credential's ``redirect_uri`` gives one."""


def oauth_login_plan(
    credential: Credential, settings: Mapping[str, str], *, port: int | None = None
) -> OAuthLoginPlan:
    """Check *credential* can log in and work out its URLs, port and token reader."""
    from urllib.parse import urlsplit

    from .auth.oauth import resolve_oauth_urls
    from .errors import UnknownVendorError
    from .models import AuthKind
    from .plugins import vendor_info

    if credential.kind is not AuthKind.OAUTH2_AUTHORIZATION_CODE:
        raise ConfigurationError(
            f"credential '{credential.name}' is of kind {credential.kind.value}; "
            "'auth login' needs an oauth2_authorization_code credential"
        )
    try:
        info = vendor_info(credential.vendor)
        parser = get_connector(credential.vendor).token_response_parser()
    except UnknownVendorError:
        info, parser = None, None
    token_url, authorize_url = resolve_oauth_urls(credential, info, settings)
    if not token_url or not authorize_url:
        raise ConfigurationError(
            f"credential '{credential.name}' needs token_url and authorize_url "
            "(neither the credential nor an installed plugin gives them); install the "
            f"{credential.vendor} plugin, or add them with 'oomnitza-connect credentials add "
            f"{credential.name} ... --token-url URL --authorize-url URL --force'",
            key_path="authorize_url" if token_url else "token_url",
        )
    if port is None:
        registered = urlsplit(credential.redirect_uri) if credential.redirect_uri else None
        port = registered.port if registered and registered.port else DEFAULT_LOGIN_PORT
    return OAuthLoginPlan(token_url, authorize_url, port, parser)
