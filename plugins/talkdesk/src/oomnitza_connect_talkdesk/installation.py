"""A credential from Talkdesk's ``app.installed`` event.

When an account installs an app, Talkdesk sends an ``app.installed`` event
whose ``data`` carries ``client_id``, ``client_secret``, ``private_key``
(Base64 PKCS#8), ``key_id`` and ``key_algorithm``, and whose ``_links.root``
names the account's API root. Saved to a file, it becomes a credential:

>>> credential = credential_from_app_installed("app-installed.json", name="talkdesk")
>>> credential.client_auth_method.value
'private_key_jwt'

or, from the command line, ``oomnitza-connect-talkdesk import-installation
app-installed.json --name talkdesk``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from oomnitza_connect.auth.oauth import ASSERTION_ALGORITHMS, load_private_key
from oomnitza_connect.errors import ConfigurationError
from oomnitza_connect.models import AuthKind, ClientAuthMethod, Credential
from oomnitza_connect.redaction import Secret

from .presets import VENDOR
from .vendor import SCOPES

__all__ = ["InstalledApp", "credential_from_app_installed", "read_app_installed"]


class InstalledApp:
    """What an ``app.installed`` event says about one installation (secrets kept as Secret)."""

    def __init__(self, data: Mapping[str, Any], links: Mapping[str, Any], source: str) -> None:
        self.source = source
        self.installation_id = _text(data.get("installation_id"))
        self.account_id = _text(data.get("account_id"))
        self.account_name = _text(data.get("account_name"))
        self.client_id = _text(data.get("client_id"))
        secret = _text(data.get("client_secret"))
        self.client_secret = Secret(secret) if secret else None
        key = _text(data.get("private_key"))
        self.private_key = Secret(key) if key else None
        self.key_id = _text(data.get("key_id"))
        self.key_algorithm = _text(data.get("key_algorithm"))
        root = links.get("root") if isinstance(links, Mapping) else None
        self.api_root = _text(root.get("href")) if isinstance(root, Mapping) else None

    def __repr__(self) -> str:
        return (
            f"<InstalledApp account={self.account_name!r} client_id={self.client_id!r} "
            f"installation_id={self.installation_id!r}>"
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def read_app_installed(source: str | Path | Mapping[str, Any]) -> InstalledApp:
    """Read an ``app.installed`` event from a file path or an already decoded mapping.

    The event's ``data`` object is used; a file holding only ``data`` works too.

    :raises ConfigurationError: the file cannot be read, is not JSON or lacks a field;
        the message names the file and the key, never a secret's value.
    """
    where = "the app.installed event" if isinstance(source, Mapping) else str(source)
    if isinstance(source, Mapping):
        event: Any = source
    else:
        try:
            event = json.loads(Path(source).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read the app.installed file ({exc.strerror or exc})", file=where
            ) from None
        except ValueError as exc:
            raise ConfigurationError(
                f"the app.installed file is not JSON (line {getattr(exc, 'lineno', '?')})",
                file=where,
            ) from None
    if not isinstance(event, Mapping):
        raise ConfigurationError("the app.installed event must be a JSON object", file=where)
    data = event.get("data", event)
    if not isinstance(data, Mapping):
        raise ConfigurationError(
            "the app.installed event's 'data' must be an object", file=where, key_path="data"
        )
    links = event.get("_links") or data.get("_links") or {}
    app = InstalledApp(data, links, where)
    prefix = "data." if "data" in event else ""
    if not app.client_id:
        raise ConfigurationError(
            "the app.installed event has no client_id", file=where, key_path=f"{prefix}client_id"
        )
    return app


def credential_from_app_installed(
    source: str | Path | Mapping[str, Any],
    *,
    name: str = VENDOR,
    method: str = "jwt",
    scopes: tuple[str, ...] = SCOPES,
    token_url: str | None = None,
    use_api_root: bool = True,
) -> Credential:
    """Return a Talkdesk credential from an ``app.installed`` event (file path or mapping).

    :param method: ``"jwt"`` signs client assertions with the event's private key
        (what AppConnect apps use); ``"basic"`` sends the client secret with HTTP Basic.
    :param token_url: only for a token host that the subdomain and region do not
        give (an emulator); normally the settings pick it.
    :param use_api_root: take the event's ``_links.root.href`` as the API root, as
        Talkdesk advises for marketplace apps.
    :raises ConfigurationError: a field the method needs is missing or unusable.
    """
    app = read_app_installed(source)
    prefix = "data."
    if method not in ("jwt", "basic"):
        raise ConfigurationError(
            f"unknown client authentication {method!r}", key_path="method", allowed="jwt, basic"
        )
    common: dict[str, Any] = {
        "name": name,
        "vendor": VENDOR,
        "kind": AuthKind.OAUTH2_CLIENT_CREDENTIALS,
        "client_id": app.client_id,
        "scopes": tuple(scopes),
        "token_url": token_url,
        "base_url": app.api_root if use_api_root else None,
    }
    if method == "basic":
        if app.client_secret is None:
            raise ConfigurationError(
                "the app.installed event has no client_secret for HTTP Basic",
                file=app.source,
                key_path=f"{prefix}client_secret",
            )
        return Credential(
            **common,
            client_secret=app.client_secret,
            client_auth_method=ClientAuthMethod.CLIENT_SECRET_BASIC,
        )
    if app.private_key is None:
        raise ConfigurationError(
            "the app.installed event has no private_key to sign client assertions",
            file=app.source,
            key_path=f"{prefix}private_key",
        )
    try:
        load_private_key(app.private_key.reveal())
    except ConfigurationError:
        raise ConfigurationError(
            "the app.installed event's private_key is not a Base64 PKCS#8 or PEM key",
            file=app.source,
            key_path=f"{prefix}private_key",
        ) from None
    algorithm = (app.key_algorithm or "").upper() or None
    if algorithm is not None and algorithm not in ASSERTION_ALGORITHMS:
        raise ConfigurationError(
            f"the app.installed event's key_algorithm {app.key_algorithm!r} is not supported",
            file=app.source,
            key_path=f"{prefix}key_algorithm",
            allowed=", ".join(ASSERTION_ALGORITHMS),
        )
    return Credential(
        **common,
        client_secret=app.client_secret,
        client_auth_method=ClientAuthMethod.PRIVATE_KEY_JWT,
        private_key=app.private_key,
        key_id=app.key_id,
        signing_algorithm=algorithm,
    )
