"""A separate process renewing one stored OAuth2 credential (the cross-process tests' child).

``python credential_worker.py HOME TOKEN_URL NAME ROUNDS [SYNC_DIR]``: loads credential
NAME from the file store under HOME, then ROUNDS times makes it renew its access token
(as after a 401), through the store. With SYNC_DIR it writes ``SYNC_DIR/ready-<pid>``
once the credential is loaded and waits for ``SYNC_DIR/go`` before renewing, so that
two workers start from the same stored tokens. Prints ``ok`` or ``error: <message>``.

``python credential_worker.py HOME - NAME ROUNDS [SYNC_DIR]``: saves credential NAME ROUNDS times,
its access token set to ``NAME-<round>`` (the bare read-modify-write race).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import attrs

from oomnitza_connect.auth.credentials import CredentialStore
from oomnitza_connect.auth.oauth import AuthorizationCodeAuth
from oomnitza_connect.errors import OomnitzaConnectError


def wait_for_go(sync_dir: Path | None) -> None:
    if sync_dir is not None:
        (sync_dir / f"ready-{os.getpid()}").write_text("")
        while not (sync_dir / "go").exists():
            time.sleep(0.01)


def main(argv: list[str]) -> int:
    home, token_url, name, rounds = argv[1], argv[2], argv[3], int(argv[4])
    sync_dir = Path(argv[5]) if len(argv) > 5 else None
    store = CredentialStore(home, keyring_backend=False, environ={})
    if token_url == "-":
        credential = store.get(name)
        wait_for_go(sync_dir)
        for round_number in range(rounds):
            store.save(attrs.evolve(credential, access_token=f"{name}-{round_number}"))
        print("ok")
        return 0
    auth = AuthorizationCodeAuth(store.get(name), token_url=token_url, credential_store=store)
    wait_for_go(sync_dir)
    try:
        for _ in range(rounds):
            current = auth.credential.access_token
            sent = f"Bearer {current.reveal()}" if current else None
            auth.token_rejected(sent)
            auth.current_token()
    except OomnitzaConnectError as exc:
        print(f"error: {exc}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
