"""Real Redis and PostgreSQL servers for tests and benchmarks, on loopback.

Each server runs from the distribution's own binaries (Debian's
``redis-server`` and ``postgresql`` packages; ``.ci/run`` installs them) in a
temporary directory, on a random free port bound to 127.0.0.1 only, and is
stopped (its directory removed) by :meth:`stop`.

>>> with RedisServer() as redis, PostgresServer() as postgres:
...     print(redis.url, postgres.dsn)

PostgreSQL refuses to run as root; when the tests run as root (CI does), the
server runs as the ``postgres`` system user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "PG_BIN_ENV",
    "PostgresServer",
    "RedisServer",
    "ServiceUnavailable",
    "free_port",
    "postgres_binaries",
    "redis_binary",
]

PG_BIN_ENV = "OOMNITZA_CONNECT_PG_BIN"
"""A directory holding ``initdb`` and ``pg_ctl``, when they are not found on their own."""

_LOOPBACK = "127.0.0.1"
_START_TIMEOUT = 30.0


class ServiceUnavailable(RuntimeError):
    """The server's binaries are not installed (the message says which package to install)."""


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((_LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def redis_binary() -> str:
    """Return the path of ``redis-server``.

    :raises ServiceUnavailable: it is not installed.
    """
    found = shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        raise ServiceUnavailable(
            "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server; "
            "bash .ci/run installs it)"
        )
    return found


def postgres_binaries() -> Path:
    """Return the directory that holds ``initdb`` and ``pg_ctl`` (the newest installed).

    :raises ServiceUnavailable: PostgreSQL's server is not installed.
    """
    candidates: list[Path] = []
    explicit = os.environ.get(PG_BIN_ENV)
    if explicit:
        candidates.append(Path(explicit))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    # Debian keeps each major version's server binaries off PATH.
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: int(Path(path).parent.name) if Path(path).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(Path(path) for path in versions)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise ServiceUnavailable(
        "the PostgreSQL server (initdb, pg_ctl) is not installed (Debian/Ubuntu: "
        f"apt-get install postgresql, or set ${PG_BIN_ENV}; bash .ci/run installs it)"
    )


class RedisServer:
    """A ``redis-server`` of its own, without persistence, on a free loopback port."""

    def __init__(self) -> None:
        self.binary = redis_binary()
        self.port = 0
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{_LOOPBACK}:{self.port}/0"

    def url_for(self, db: int) -> str:
        """Return the URL of logical database *db* (tests use one each)."""
        return f"redis://{_LOOPBACK}:{self.port}/{db}"

    def _answers(self) -> bool:
        try:
            with socket.create_connection((_LOOPBACK, self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> RedisServer:
        self.directory = Path(tempfile.mkdtemp(prefix="oomnitza-redis-"))
        log = self.directory / "redis.log"
        # A port found free can be taken before the server binds it: try a few.
        for _ in range(5):
            self.port = free_port()
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port", str(self.port),
                    "--bind", _LOOPBACK,
                    "--protected-mode", "yes",
                    "--save", "",
                    "--appendonly", "no",
                    "--databases", "256",
                    "--dir", str(self.directory),
                    "--logfile", str(log),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline and self.process.poll() is None:
                if self._answers():
                    return self
                time.sleep(0.05)
            self.process.kill()
            self.process.wait()
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server did not start; its log ends with:\n{detail}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class PostgresServer:
    """A PostgreSQL cluster of its own (initdb into a temporary directory) on loopback.

    Trust authentication for the ``oomnitza`` superuser over 127.0.0.1 only, no
    fsync (a test cluster is thrown away), no Unix socket outside its directory.
    """

    superuser = "oomnitza"

    def __init__(self) -> None:
        self.binaries = postgres_binaries()
        self.port = 0
        self.directory: Path | None = None
        self._run_as: str | None = None

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.superuser}@{_LOOPBACK}:{self.port}/{database}"

    def _command(self, *args: str) -> list[str]:
        if self._run_as is None:
            return list(args)
        return ["runuser", "-u", self._run_as, "--", *args]

    def _answers(self) -> bool:
        try:
            with socket.create_connection((_LOOPBACK, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable(
                    "PostgreSQL refuses to run as root and there is no 'postgres' user "
                    "(Debian's postgresql package creates it)"
                ) from None
            self._run_as = "postgres"
        # Not under pytest's tmp dirs: those are private to the test user, and
        # the server may run as another one.
        self.directory = Path(tempfile.mkdtemp(prefix="oomnitza-postgres-"))
        data = self.directory / "data"
        log = self.directory / "postgres.log"
        if self._run_as is not None:
            shutil.chown(self.directory, user=self._run_as)
        try:
            subprocess.run(
                self._command(
                    str(self.binaries / "initdb"),
                    "--pgdata", str(data),
                    "--username", self.superuser,
                    "--auth", "trust",
                    "--encoding", "UTF8",
                    "--no-locale",
                    "--no-sync",
                ),
                check=True,
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            self.stop()
            raise RuntimeError(
                f"initdb failed: {exc.stderr.decode(errors='replace')[-2000:]}"
            ) from None
        for _ in range(5):
            self.port = free_port()
            options = (
                f"-c listen_addresses={_LOOPBACK} -p {self.port} "
                f"-c unix_socket_directories={self.directory} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=200"
            )
            started = subprocess.run(
                self._command(
                    str(self.binaries / "pg_ctl"),
                    "--pgdata", str(data),
                    "--log", str(log),
                    "--options", options,
                    "--wait",
                    "--timeout", str(int(_START_TIMEOUT)),
                    "start",
                ),
                stdin=subprocess.DEVNULL,
                capture_output=True,
            )  # fmt: skip
            if started.returncode == 0 and self._answers():
                return self
        detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start; its log ends with:\n{detail}")

    def create_database(self, name: str) -> str:
        """Create database *name* and return its DSN (needs psycopg, the celery extra)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # a test's own name, not input
        return self.dsn_for(name)

    def stop(self) -> None:
        if self.directory is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    self._command(
                        str(self.binaries / "pg_ctl"),
                        "--pgdata", str(data),
                        "--mode", "immediate",
                        "--wait",
                        "stop",
                    ),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                )  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
