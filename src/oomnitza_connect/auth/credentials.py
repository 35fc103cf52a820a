"""Named credentials: environment variables, the OS keyring, or a private file.

Where a credential is looked up, in order:

1. ``OOMNITZA_CONNECT_CREDENTIAL_<NAME>``: an environment variable holding the
   credential as JSON or TOML (``<NAME>`` is the name upper-cased, every
   character other than a letter or digit turned into ``_``). Read-only.
2. The persistent store: the OS keyring (through the ``keyring`` library)
   when a usable backend exists, otherwise ``credentials.json`` in the config
   directory (``$OOMNITZA_CONNECT_HOME``, else the platform's per-user config
   directory). The file is written with mode 0600 through a temporary file
   and ``os.replace``, and refused when other users can read it.

Tokens the SDK renews (``access_token``, ``refresh_token``, ``expires_at``)
are saved to the persistent store even for a credential defined in the
environment, and overlay the environment's values when it is read, so a
rotated refresh token is never shadowed by a stale one.

``OOMNITZA_CONNECT_KEYRING=0`` keeps credentials out of the keyring.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import re
import stat
import tempfile
import threading
import tomllib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import platformdirs

from ..errors import ConfigurationError
from ..models import Credential

if TYPE_CHECKING:
    import filelock

__all__ = [
    "CREDENTIAL_ENV_PREFIX",
    "HOME_ENV",
    "KEYRING_ENV",
    "KEYRING_SERVICE",
    "OOMNITZA_VENDOR",
    "CredentialStore",
    "config_home",
    "credential_env_name",
    "credential_vendors",
    "default_credential_store",
    "refresh_token_fingerprint",
    "resolve_credential",
    "usable_keyring",
    "use_default_credential_store",
]

CREDENTIAL_ENV_PREFIX = "OOMNITZA_CONNECT_CREDENTIAL_"
HOME_ENV = "OOMNITZA_CONNECT_HOME"
KEYRING_ENV = "OOMNITZA_CONNECT_KEYRING"
KEYRING_SERVICE = "oomnitza-connect"
OOMNITZA_VENDOR = "oomnitza"
"""The vendor of a credential for the Oomnitza destination, which no vendor plugin provides."""
CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = ".credentials.lock"
LOCK_TIMEOUT = 60.0
"""Seconds to wait for another process's write (a token request takes far less)."""
SECRET_KEYS = frozenset(
    {"token", "password", "client_secret", "private_key", "access_token", "refresh_token"}
)
TOKEN_KEYS = ("access_token", "refresh_token", "expires_at")
# Values sent verbatim in a header or a form: a vendor never issues one with
# whitespace, a control character or a non-ASCII one, so such a value is a copy-and-paste slip
# (a trailing newline) that would otherwise fail deep inside the HTTP stack.
TOKEN_LIKE_KEYS = ("token", "access_token", "refresh_token", "client_secret", "client_id")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def config_home(environ: Mapping[str, str] | None = None) -> Path:
    """Return the directory holding oomnitza-connect's configuration."""
    env = os.environ if environ is None else environ
    override = env.get(HOME_ENV)
    if override:
        return Path(override)
    return platformdirs.user_config_path("oomnitza-connect")


def credential_env_name(name: str) -> str:
    """Return the environment variable that may define credential *name*."""
    return CREDENTIAL_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def credential_vendors() -> list[str]:
    """Return the vendors a credential can be used for, sorted: each installed
    vendor plugin's, and Oomnitza's (the destination)."""
    from ..plugins import vendor_infos  # loads the plugins: only when a vendor is checked

    return sorted({*vendor_infos(), OOMNITZA_VENDOR})


def usable_keyring() -> Any:
    """Return the keyring backend when it can really store secrets, else ``None``."""
    import keyring
    from keyring.backends import chainer, fail, null

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigurationError(
            f"'{name}' is not a valid credential name",
            allowed="letters, digits, '_', '.', '-', starting with a letter or digit",
        )


def _to_data(credential: Credential) -> dict[str, Any]:
    from ..config import unstructure

    data: dict[str, Any] = unstructure(credential)
    return {k: v for k, v in data.items() if v is not None and v != [] and v != ()}


def _from_data(data: Mapping[str, Any], *, source: str, in_file: str | None = None) -> Credential:
    """Build the credential *data* describes.

    :param in_file: the name *data* is stored under in the credentials file; an
        error's key paths then start at the file's root (``credentials.NAME.key``).
    """
    from ..config import structure  # cattrs, only when a credential is read

    try:
        credential = structure(data, Credential, file=source, secret_keys=SECRET_KEYS)
        check_token_characters(credential, source=source)
    except ConfigurationError as exc:
        if in_file is None:
            raise
        raise _under(exc, in_file) from None
    return credential


_PROBLEM_KEY = re.compile(r"^key '")


def _under(exc: ConfigurationError, name: str) -> ConfigurationError:
    """*exc* with its key paths read from the root of the file (``credentials.c1.tokn``)."""
    key_prefix = f"credentials.{name}."
    message = exc.message
    if exc.problems:
        message = message.replace("in configuration", f"in credential '{name}'")
    return ConfigurationError(
        message,
        file=exc.file,
        key_path=f"{key_prefix}{exc.key_path}" if exc.key_path else key_prefix.rstrip("."),
        value=exc.value,
        allowed=exc.allowed,
        problems=[_PROBLEM_KEY.sub(f"key '{key_prefix}", p, count=1) for p in exc.problems],
    )


def _json_problem(exc: ValueError) -> str:
    """Where a document stops being JSON (the decoder's words, never the text)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "is not valid JSON (it is not UTF-8 text)"


def token_character_problem(value: str) -> str | None:
    """Say what is wrong with a token-like *value* (never quoting it), or ``None``."""
    for character in value:
        if character.isspace():
            return "contains whitespace (a line break or a space)"
        if not character.isprintable():
            return "contains a control character"
        if not character.isascii():
            # Issued tokens are ASCII; an HTTP header cannot even carry most others.
            return "contains a character outside ASCII (a typographic quote, a symbol)"
    return None


def check_token_characters(credential: Credential, *, source: str | None = None) -> None:
    """Refuse a credential whose tokens hold whitespace or control characters.

    :raises ConfigurationError: naming the key, never the value.
    """
    for key in TOKEN_LIKE_KEYS:
        value = getattr(credential, key)
        if value is None:
            continue
        text = value if isinstance(value, str) else value.reveal()
        problem = token_character_problem(text)
        if problem is not None:
            raise ConfigurationError(
                f"the {key} of credential '{credential.name}' {problem}; tokens never do, "
                "so it was probably copied with extra characters: store it again without them",
                file=source,
                key_path=key,
            )


class CredentialStore:
    """Named credentials, read from the environment and kept in the keyring or a file.

    :param home: the config directory (default: :func:`config_home`).
    :param keyring_backend: a keyring backend to use, ``False`` for none, or
        ``None`` to use the system's when it is usable.
    :param environ: the environment to read (default: ``os.environ``).
    """

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        keyring_backend: Any = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.home = Path(home) if home is not None else config_home(self.environ)
        if keyring_backend is False or self.environ.get(KEYRING_ENV) == "0":
            self.keyring: Any = None
        elif keyring_backend is None:
            self.keyring = usable_keyring()
        else:
            self.keyring = keyring_backend
        self._lock = threading.RLock()
        self._file_lock: filelock.FileLock | None = None

    def __repr__(self) -> str:
        where = "keyring" if self.keyring is not None else str(self.file)
        return f"<CredentialStore {where}>"

    @property
    def file(self) -> Path:
        return self.home / CREDENTIALS_FILE

    # -- the public API ---------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store for a read-modify-write, against threads and other processes.

        Every write takes it; a token renewal holds it around re-reading the
        credential, asking the vendor and saving the answer, so that two
        processes never both spend the same refresh token (the second one
        finds the first one's tokens). Reentrant.
        """
        import filelock  # a sync with its credential in hand never takes the store's lock

        with self._lock:
            if self._file_lock is None:
                self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
                # One lock object per file in this process (is_singleton), so two
                # store objects on one directory (a shared store wrapping a local
                # one) re-enter it instead of waiting for each other.
                self._file_lock = filelock.FileLock(
                    str((self.home / LOCK_FILE).resolve()),
                    timeout=LOCK_TIMEOUT,
                    mode=0o600,
                    is_singleton=True,
                )
            try:
                with self._file_lock:
                    yield
            except filelock.Timeout:
                raise ConfigurationError(
                    f"another process has held the credential store for {LOCK_TIMEOUT:.0f} s; "
                    f"if none is running, delete {self.home / LOCK_FILE}",
                    file=str(self.file),
                ) from None

    @contextlib.contextmanager
    def renewing(self, name: str) -> Iterator[None]:
        """Hold credential *name*'s token renewal against every other process.

        Here the store's file lock (:meth:`locked`); a store shared across
        machines (``RedisCredentialStore``) holds its own lock instead.
        """
        with self.locked():
            yield

    def get(self, name: str) -> Credential:
        """Return credential *name*.

        :raises ConfigurationError: it does not exist, or its definition is bad.
        """
        with self._lock:
            stored = self._stored_data(name)
            env_data = self._env_data(name)
            if env_data is not None:
                if stored is not None:
                    env_data.update({k: stored[k] for k in TOKEN_KEYS if k in stored})
                return _from_data(env_data, source=f"${credential_env_name(name)}")
            if stored is not None:
                label = self._source_label(name)
                in_file = name if label == str(self.file) else None
                return _from_data(stored, source=label, in_file=in_file)
        known = ", ".join(c.name for c in self.list()) or "none"
        raise ConfigurationError(
            f"no credential named '{name}' (known: {known}); add it with "
            f"'oomnitza-connect credentials add {name} ...' or set ${credential_env_name(name)}"
        )

    def save(self, credential: Credential) -> None:
        """Create or replace *credential* in the persistent store, atomically."""
        _check_name(credential.name)
        check_token_characters(credential)
        data = _to_data(credential)
        with self.locked():
            # Read under the lock: another process may have saved meanwhile.
            document = self._read_file()
            self._put(document, credential.name, data)
            self._write_file(document)

    def _put(self, document: dict[str, Any], name: str, data: dict[str, Any]) -> None:
        entries: dict[str, Any] = document["credentials"]
        if self.keyring is not None:
            self.keyring.set_password(KEYRING_SERVICE, name, json.dumps(data))
            entries[name] = {"stored_in": "keyring"}
        else:
            entries[name] = data

    def remove(self, name: str) -> None:
        """Delete credential *name* from the persistent store."""
        with self.locked():
            document = self._read_file()
            entry = document["credentials"].pop(name, None)
            if entry is None:
                if self._env_data(name) is not None:
                    raise ConfigurationError(
                        f"credential '{name}' is defined by ${credential_env_name(name)}; "
                        "unset that variable to remove it"
                    )
                raise ConfigurationError(f"no credential named '{name}' is stored")
            if entry.get("stored_in") == "keyring" and self.keyring is not None:
                self.keyring.delete_password(KEYRING_SERVICE, name)
            document.get("rotations", {}).pop(name, None)
            self._write_file(document)

    # -- token rotations ---------------------------------------------------------
    #
    # A refresh token that rotates is spent the moment the vendor sees it. The
    # window between the vendor's answer and the save cannot be closed from
    # this side, so it is recorded: an intent is written before the request and
    # cleared with the new tokens. An intent found on the next start means the
    # last rotation's outcome is unknown (see docs/credentials.md).

    def begin_rotation(self, name: str, refresh_token: str) -> None:
        """Record, before the token request, that *refresh_token* is being spent."""
        with self.locked():
            document = self._read_file()
            rotations = document.setdefault("rotations", {})
            rotations[name] = {
                "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "refresh_token_sha256": refresh_token_fingerprint(refresh_token),
                "pid": os.getpid(),
            }
            self._write_file(document)

    def interrupted_rotation(self, name: str, refresh_token: str | None) -> str | None:
        """Return when an unfinished rotation of *refresh_token* started, if one did."""
        marker = self._read_file().get("rotations", {}).get(name)
        if not isinstance(marker, dict) or refresh_token is None:
            return None
        if marker.get("refresh_token_sha256") != refresh_token_fingerprint(refresh_token):
            return None  # an older intent; the tokens were replaced since
        return str(marker.get("started_at") or "an unknown time")

    def end_rotation(self, name: str, updated: Credential | None = None) -> None:
        """Save *updated* (the new tokens), then clear the intent."""
        with self.locked():
            if updated is not None:
                # Through save(), which a shared store overrides. A crash between
                # the two writes leaves an intent for the old refresh token only,
                # which no longer matches the saved one and is ignored.
                self.save(updated)
            document = self._read_file()
            if document.get("rotations", {}).pop(name, None) is not None:
                self._write_file(document)

    def list(self) -> builtins.list[Credential]:
        """Return every credential (environment and stored), sorted by name."""
        names: set[str] = set(self._stored_names())
        names.update(self._env_names())
        return [self.get(name) for name in sorted(names)]

    def list_checked(self) -> tuple[builtins.list[Credential], builtins.list[ConfigurationError]]:
        """Every credential that loads, and the error of each one that does not (one bad
        environment variable must not hide the others)."""
        problems: builtins.list[ConfigurationError] = []
        try:
            names: set[str] = set(self._stored_names())
        except ConfigurationError as exc:
            # A broken file hides none of the credentials in the environment.
            problems.append(exc)
            return self._env_credentials(problems), problems
        for key, value in self.environ.items():
            if key.startswith(CREDENTIAL_ENV_PREFIX) and value.strip():
                try:
                    data = self._parse_env(key, value)
                except ConfigurationError as exc:
                    problems.append(exc)
                    continue
                names.add(str(data.get("name") or key[len(CREDENTIAL_ENV_PREFIX) :].lower()))
        found: builtins.list[Credential] = []
        for name in sorted(names):
            try:
                found.append(self.get(name))
            except ConfigurationError as exc:
                problems.append(exc)
        return found, problems

    def _env_credentials(
        self, problems: builtins.list[ConfigurationError]
    ) -> builtins.list[Credential]:
        found: builtins.list[Credential] = []
        for key in sorted(self.environ):
            if not key.startswith(CREDENTIAL_ENV_PREFIX) or not self.environ[key].strip():
                continue
            try:
                data = self._parse_env(key, self.environ[key])
                data.setdefault("name", key[len(CREDENTIAL_ENV_PREFIX) :].lower())
                found.append(_from_data(data, source=f"${key}"))
            except ConfigurationError as exc:
                problems.append(exc)
        return found

    def source_of(self, name: str) -> str:
        """Say where credential *name* comes from: ``environment``, ``keyring`` or ``file``."""
        if self._env_data(name) is not None:
            return "environment"
        entry = self._read_file()["credentials"].get(name)
        if entry is None:
            raise ConfigurationError(f"no credential named '{name}'")
        return "keyring" if entry.get("stored_in") == "keyring" else "file"

    # -- the environment --------------------------------------------------------

    def _env_names(self) -> builtins.list[str]:
        names: builtins.list[str] = []
        for key, value in self.environ.items():
            if key.startswith(CREDENTIAL_ENV_PREFIX) and value.strip():
                data = self._parse_env(key, value)
                names.append(str(data.get("name") or key[len(CREDENTIAL_ENV_PREFIX) :].lower()))
        return names

    def _env_data(self, name: str) -> dict[str, Any] | None:
        variable = credential_env_name(name)
        value = self.environ.get(variable)
        if not value or not value.strip():
            return None
        data = self._parse_env(variable, value)
        if data.setdefault("name", name) != name:
            raise ConfigurationError(
                f"names credential '{data['name']}' but is read for '{name}'",
                file=f"${variable}",
                key_path="name",
            )
        return data

    @staticmethod
    def _parse_env(variable: str, value: str) -> dict[str, Any]:
        text = value.strip()
        try:
            data = json.loads(text) if text.startswith("{") else tomllib.loads(text)
        except json.JSONDecodeError as exc:
            # Where it breaks, not the decoder's quote of the value, which holds secrets.
            raise ConfigurationError(_json_problem(exc), file=f"${variable}") from None
        except (ValueError, tomllib.TOMLDecodeError):
            raise ConfigurationError(
                "is neither a JSON object nor TOML", file=f"${variable}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigurationError("must hold a JSON object or TOML table", file=f"${variable}")
        return data

    # -- the persistent store ------------------------------------------------------

    def _source_label(self, name: str) -> str:
        entry = self._read_file()["credentials"].get(name) or {}
        if entry.get("stored_in") == "keyring":
            return f"keyring {KEYRING_SERVICE}/{name}"
        return str(self.file)

    def _stored_names(self) -> builtins.list[str]:
        return list(self._read_file()["credentials"])

    def _stored_data(self, name: str) -> dict[str, Any] | None:
        entry = self._read_file()["credentials"].get(name)
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise ConfigurationError(
                f"expected a table of keys, found {type(entry).__name__}",
                file=str(self.file),
                key_path=f"credentials.{name}",
            )
        if entry.get("stored_in") != "keyring":
            data = dict(entry)
            # The table is keyed by the name; a 'name' inside may only repeat it.
            if data.setdefault("name", name) != name:
                raise ConfigurationError(
                    f"names credential {data['name']!r} but is stored as '{name}'",
                    file=str(self.file),
                    key_path=f"credentials.{name}.name",
                )
            return data
        if self.keyring is None:
            raise ConfigurationError(
                f"credential '{name}' is kept in the OS keyring, which is not available now",
                file=str(self.file),
            )
        raw = self.keyring.get_password(KEYRING_SERVICE, name)
        if raw is None:
            raise ConfigurationError(
                f"credential '{name}' is listed but missing from the keyring; add it again",
                file=str(self.file),
            )
        data = json.loads(raw)
        return dict(data) if isinstance(data, dict) else None

    def _read_file(self) -> dict[str, Any]:
        path = self.file
        try:
            info = path.stat()
        except FileNotFoundError:
            return {"version": 1, "credentials": {}}
        if os.name != "nt" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"the credentials file is readable by other users (mode "
                f"{stat.S_IMODE(info.st_mode):o}), so it was not loaded; "
                f"run 'chmod 600 {path}'",
                file=str(path),
            )
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:  # UnicodeDecodeError too
            raise ConfigurationError(_json_problem(exc), file=str(path)) from None
        if not isinstance(document, dict) or not isinstance(document.get("credentials"), dict):
            raise ConfigurationError(
                "must hold an object with a 'credentials' table",
                file=str(path),
                key_path="credentials",
            )
        return document

    def _write_file(self, document: dict[str, Any]) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        # mkstemp creates the file with mode 0600 before anything is written.
        handle, temporary = tempfile.mkstemp(dir=self.home, prefix=".credentials-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=2, sort_keys=True)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def refresh_token_fingerprint(secret: str) -> str:
    """A short hash of *secret*, to recognize a refresh token again (it reveals nothing)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]


_default_store: CredentialStore | None = None


def default_credential_store() -> CredentialStore:
    """Return the store under ``$OOMNITZA_CONNECT_HOME`` (or the user config directory).

    A Celery worker replaces it with one that shares tokens through Redis
    (:func:`use_default_credential_store`).
    """
    return _default_store if _default_store is not None else CredentialStore()


def use_default_credential_store(store: CredentialStore | None) -> None:
    """Make *store* this process's default credential store (``None``: the usual one)."""
    global _default_store
    _default_store = store


def with_tokens_of(credential: Credential, other: Credential) -> Credential:
    """Return *credential* carrying *other*'s renewed tokens."""
    return attrs.evolve(
        credential,
        access_token=other.access_token,
        refresh_token=other.refresh_token,
        expires_at=other.expires_at,
    )


def resolve_credential(name: str) -> Credential:
    """Return the stored credential called *name* (from the default credential store)."""
    return default_credential_store().get(name)
