"""Credentials shared by every worker: tokens in Redis, renewal under a Redis lock.

A rotating refresh token may be spent once. With workers on several machines
each holding its own copy, the second worker to refresh would spend a token the
first already spent, and the vendor answers "sign in again". So the tokens of
a credential (access token, refresh token, expiry) live in Redis, and a renewal
happens under a Redis lock, re-reading the tokens first: a worker that finds
them rotated by another uses the new ones instead of refreshing again.

The rest of a credential (kind, client id and secret, token URL) comes from the
worker's own credential store (environment, keyring or file) as usual. Each
renewal is also saved there, so the tokens survive a Redis restart on the
machine that renewed (run Redis with persistence, see docs/scaling.md).

The intent recorded before a rotation (see ``CredentialStore.begin_rotation``)
lives in Redis too: a worker killed between the vendor's answer and the save
leaves it where the next worker, on any machine, finds it and says "sign in
again" instead of presenting a refresh token that may be spent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs

from ..auth.credentials import CredentialStore, refresh_token_fingerprint
from ..errors import AuthenticationError
from ..models import Credential
from ..redaction import Secret

__all__ = ["TOKENS_PREFIX", "RedisCredentialStore"]

log = logging.getLogger(__name__)

TOKENS_PREFIX = "oomnitza-connect:credential"
RENEWAL_LEASE = 60.0
"""Seconds a renewal may hold the credential's lock (a token request is quick)."""


class RedisCredentialStore(CredentialStore):
    """A credential store whose tokens are shared through Redis.

    :param client: a ``redis.Redis`` client.
    :param local: the store holding everything but the tokens (default: the
        default store of this machine).
    """

    def __init__(self, client: Any, local: CredentialStore | None = None) -> None:
        self.local = local if local is not None else CredentialStore()
        super().__init__(self.local.home, keyring_backend=False, environ=self.local.environ)
        self.keyring = self.local.keyring
        self.client = client

    def __repr__(self) -> str:
        return f"<RedisCredentialStore tokens in Redis, the rest in {self.local!r}>"

    @staticmethod
    def _tokens_key(name: str) -> str:
        return f"{TOKENS_PREFIX}:{name}:tokens"

    @staticmethod
    def _rotation_key(name: str) -> str:
        return f"{TOKENS_PREFIX}:{name}:rotation"

    def get(self, name: str) -> Credential:
        credential = self.local.get(name)
        raw = self.client.get(self._tokens_key(name))
        if not raw:
            return credential
        tokens = json.loads(raw)
        expires = tokens.get("expires_at")
        return attrs.evolve(
            credential,
            access_token=Secret(tokens["access_token"]) if tokens.get("access_token") else None,
            refresh_token=Secret(tokens["refresh_token"]) if tokens.get("refresh_token") else None,
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )

    def save(self, credential: Credential) -> None:
        tokens = {
            "access_token": credential.access_token.reveal() if credential.access_token else None,
            "refresh_token": credential.refresh_token.reveal()
            if credential.refresh_token
            else None,
            "expires_at": credential.expires_at.isoformat() if credential.expires_at else None,
        }
        # Redis first: the other workers must see a rotation at once.
        self.client.set(self._tokens_key(credential.name), json.dumps(tokens))
        try:
            self.local.save(credential)
        except Exception as exc:  # a read-only config dir must not fail the renewal
            log.warning(
                "credential '%s': the renewed tokens are in Redis but could not be saved "
                "locally: %s",
                credential.name,
                type(exc).__name__,
            )

    def remove(self, name: str) -> None:
        self.client.delete(self._tokens_key(name), self._rotation_key(name))
        self.local.remove(name)

    # -- token rotations, recorded where every worker sees them ----------------

    def begin_rotation(self, name: str, refresh_token: str) -> None:
        intent = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "refresh_token_sha256": refresh_token_fingerprint(refresh_token),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.client.set(self._rotation_key(name), json.dumps(intent))

    def interrupted_rotation(self, name: str, refresh_token: str | None) -> str | None:
        raw = self.client.get(self._rotation_key(name))
        if not raw or refresh_token is None:
            return None
        try:
            intent = json.loads(raw)
        except ValueError:
            return "an unknown time"  # unreadable: the outcome is unknown all the same
        if not isinstance(intent, dict):
            return "an unknown time"
        if intent.get("refresh_token_sha256") != refresh_token_fingerprint(refresh_token):
            return None  # an older intent; the tokens were replaced since
        where = f" on {intent['host']}" if intent.get("host") else ""
        return f"{intent.get('started_at') or 'an unknown time'}{where}"

    def end_rotation(self, name: str, updated: Credential | None = None) -> None:
        if updated is not None:
            # The new tokens first: a worker killed between the two writes leaves
            # an intent for the old refresh token only, which no longer matches.
            self.save(updated)
        self.client.delete(self._rotation_key(name))

    def list(self) -> list[Credential]:
        return [self.get(credential.name) for credential in self.local.list()]

    def source_of(self, name: str) -> str:
        return self.local.source_of(name)

    @contextlib.contextmanager
    def renewing(self, name: str) -> Iterator[None]:
        """Hold credential *name*'s renewal lock across every worker."""
        lock = self.client.lock(
            f"{TOKENS_PREFIX}:{name}:renewal",
            timeout=RENEWAL_LEASE,
            blocking_timeout=RENEWAL_LEASE,
        )
        if not lock.acquire():
            raise AuthenticationError(
                f"credential '{name}': another worker held the token renewal for more than "
                f"{RENEWAL_LEASE:.0f} s"
            )
        try:
            yield
        finally:
            from redis.exceptions import LockError

            with contextlib.suppress(LockError):
                lock.release()
