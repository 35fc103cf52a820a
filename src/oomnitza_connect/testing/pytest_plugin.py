"""pytest plugin of oomnitza-connect (registered through the ``pytest11`` entry point).

Installing the SDK changes nothing about other pytest sessions: a user's own
tests see every installed vendor plugin, as their scripts do. Isolation is
opt-in, for tests that must see only the plugins they register themselves
(a plugin's own tests, the conformance suite, this project's suite): the
``isolated_plugins`` fixture, asked for by a test, by
``@pytest.mark.usefixtures("isolated_plugins")`` or by an autouse fixture in a
``conftest.py``.

Fixtures:

``isolated_plugins``
    For the rest of the test, entry-point plugins are not loaded (the plugin
    manager starts afresh with ``OOMNITZA_CONNECT_LOAD_ENTRY_POINTS=0``, which
    subprocesses the test starts inherit); register what the test needs with
    ``register_plugins`` or :func:`oomnitza_connect.plugins.register_plugin`.

``emulator_factory``
    ``emulator_factory(EmulatorClass, **options)`` (or an emulator instance)
    starts an emulator and stops it when the test ends.
``register_plugins``
    ``register_plugins(module, ...)`` registers hook implementations for the
    rest of the test.
``generic_vendor`` / ``generic_emulator``
    The test kit's generic vendor, registered, and a running emulator of it.
``redis_server`` / ``postgres_server``
    A real ``redis-server`` / PostgreSQL cluster for the whole test session, on
    a free loopback port (:mod:`oomnitza_connect.testing.services`). A test that
    asks for one is skipped, saying which package to install, only when the
    binaries are missing outside CI; under CI (``$CI`` set) that is a failure,
    because ``.ci/run`` installs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, NoReturn

import pytest

from ..plugins import LOAD_ENTRY_POINTS_ENV, register_plugin, reset_plugin_manager
from .emulator import Emulator

__all__ = [
    "emulator_factory",
    "generic_emulator",
    "generic_vendor",
    "isolated_plugins",
    "postgres_server",
    "redis_server",
    "register_plugins",
]

EmulatorFactory = Callable[..., Emulator]


@pytest.fixture
def isolated_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load no entry-point plugin until the test ends; the test registers its own.

    The plugin manager is rebuilt before and after the test, so neither the
    plugins loaded before it nor the ones it registers outlive it.
    """
    monkeypatch.setenv(LOAD_ENTRY_POINTS_ENV, "0")
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def emulator_factory() -> Iterator[EmulatorFactory]:
    """Start emulators for one test and stop them all afterwards.

    Pass an :class:`Emulator` subclass and its options, or an emulator instance.
    """
    started: list[Emulator] = []

    def start(emulator: type[Emulator] | Emulator, /, **options: Any) -> Emulator:
        if isinstance(emulator, type):
            instance = emulator(**options)
        elif options:
            raise TypeError("options can only be given with an emulator class, not an instance")
        else:
            instance = emulator
        instance.start()
        started.append(instance)
        return instance

    yield start
    for emulator in reversed(started):
        emulator.stop()


@pytest.fixture
def register_plugins() -> Iterator[Callable[..., None]]:
    """Register hook-implementing modules or objects until the test ends."""
    with ExitStack() as stack:

        def register(*plugins: object) -> None:
            for plugin in plugins:
                stack.enter_context(register_plugin(plugin))

        yield register


@pytest.fixture
def generic_vendor() -> Iterator[Any]:
    """Register the test kit's generic vendor and return its module."""
    from . import generic

    with register_plugin(generic.vendor):
        yield generic


@pytest.fixture
def generic_emulator(emulator_factory: EmulatorFactory) -> Emulator:
    """A running emulator of the generic vendor with 25 users."""
    from .generic import GenericEmulator

    return emulator_factory(GenericEmulator, users=25)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must install it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real redis-server for the test session (one per xdist worker)."""
    from .services import RedisServer, ServiceUnavailable

    try:
        server = RedisServer()
    except ServiceUnavailable as exc:
        _unavailable(str(exc))
    with server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL cluster for the test session (one per xdist worker)."""
    from .services import PostgresServer, ServiceUnavailable

    try:
        server = PostgresServer()
        server.start()
    except ServiceUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()
