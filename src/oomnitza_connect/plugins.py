"""The plugin manager: loading, blocking, tracing and the vendor registry.

Loading is lazy (the first call to :func:`get_plugin_manager`) and idempotent,
because notebooks import and re-import freely. Entry points in the group
``oomnitza_connect`` are loaded one by one so that a plugin that fails to
import is reported by its distribution name while the others keep working.

Environment variables:

``OOMNITZA_CONNECT_PLUGINS``
    A comma-separated allow-list of entry-point names; others are not loaded.
``OOMNITZA_CONNECT_BLOCK_PLUGINS``
    A comma-separated block-list of entry-point names.
``OOMNITZA_CONNECT_TRACE_PLUGINS``
    Any non-empty value logs every hook call and result at DEBUG level.
``OOMNITZA_CONNECT_LOAD_ENTRY_POINTS``
    ``0`` skips entry points entirely (the pytest plugin sets it, so that
    tests register plugins explicitly).
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError, UnknownVendorError
from .models import VendorInfo
from .redaction import install_log_redaction

__all__ = [
    "FailedPlugin",
    "PluginDistribution",
    "get_plugin_manager",
    "loaded_distributions",
    "failed_plugins",
    "register_plugin",
    "vendor_infos",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
ALLOW_ENV = "OOMNITZA_CONNECT_PLUGINS"
BLOCK_ENV = "OOMNITZA_CONNECT_BLOCK_PLUGINS"
TRACE_ENV = "OOMNITZA_CONNECT_TRACE_PLUGINS"
LOAD_ENTRY_POINTS_ENV = "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS"

# Modules of the core that implement hooks themselves (the default mapping).
BUILTIN_PLUGINS = ("oomnitza_connect.mapping",)


@attrs.frozen
class PluginDistribution:
    """An entry-point plugin that loaded."""

    name: str
    distribution: str
    version: str
    module: str


@attrs.frozen
class FailedPlugin:
    """An entry-point plugin that could not be loaded."""

    name: str
    distribution: str
    error: str


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_distributions: list[PluginDistribution] = []
_failures: list[FailedPlugin] = []
_vendors: dict[str, VendorInfo] | None = None


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading plugins on first use."""
    global _manager
    with _lock:
        if _manager is not None:
            return _manager
        install_log_redaction()
        manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        manager.add_hookspecs(hookspecs)
        for module_name in BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            manager.register(module, name=module_name)
        if os.environ.get(LOAD_ENTRY_POINTS_ENV, "1") != "0":
            _load_entry_points(manager)
        _check(manager)
        if os.environ.get(TRACE_ENV):
            _enable_tracing(manager)
        _manager = manager
        return manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    allowed = _env_list(ALLOW_ENV)
    blocked = _env_list(BLOCK_ENV) or set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry_point.name not in allowed:
            continue
        if entry_point.name in blocked:
            manager.set_blocked(entry_point.name)
            continue
        dist = entry_point.dist
        dist_name = dist.name if dist is not None else entry_point.name
        if manager.get_plugin(entry_point.name) is not None or manager.is_blocked(
            entry_point.name
        ):
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
        except Exception as exc:
            message = f"{exc.__class__.__name__}: {exc}"
            _failures.append(FailedPlugin(entry_point.name, dist_name, message))
            warnings.warn(
                f"oomnitza-connect plugin '{entry_point.name}' from distribution "
                f"'{dist_name}' failed to load and is skipped: {message}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        _distributions.append(
            PluginDistribution(
                name=entry_point.name,
                distribution=dist_name,
                version=dist.version if dist is not None else "unknown",
                module=getattr(plugin, "__name__", repr(plugin)),
            )
        )


def _check(manager: pluggy.PluginManager) -> None:
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin '{manager.get_name(exc.plugin)}' implements a hook that does not exist: "
            f"{exc}. Check the spelling against docs/plugins/hooks.md."
        ) from None


def _enable_tracing(manager: pluggy.PluginManager) -> None:
    def before(hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        names = [impl.plugin_name for impl in hook_impls]
        log.debug("hook %s called on %s with %s", hook_name, names, sorted(kwargs))

    def after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: Any) -> None:
        log.debug("hook %s returned %s", hook_name, type(outcome.get_result()).__name__)

    manager.add_hookcall_monitoring(before, after)


def loaded_distributions() -> list[PluginDistribution]:
    """Return the entry-point plugins that loaded."""
    get_plugin_manager()
    return list(_distributions)


def failed_plugins() -> list[FailedPlugin]:
    """Return the entry-point plugins that failed to load, with their errors."""
    get_plugin_manager()
    return list(_failures)


def vendor_infos() -> dict[str, VendorInfo]:
    """Return every registered vendor by connector name."""
    global _vendors
    with _lock:
        if _vendors is None:
            found: dict[str, VendorInfo] = {}

            def register(info: VendorInfo) -> None:
                if not isinstance(info, VendorInfo):
                    raise PluginError(f"register_vendors expects VendorInfo, got {info!r}")
                if info.name in found:
                    raise PluginError(f"vendor '{info.name}' is registered twice")
                found[info.name] = info

            get_plugin_manager().hook.register_vendors(register=register)
            _vendors = found
        return dict(_vendors)


def vendor_info(name: str) -> VendorInfo:
    vendors = vendor_infos()
    try:
        return vendors[name]
    except KeyError:
        raise UnknownVendorError(name, list(vendors)) from None


def _invalidate() -> None:
    global _vendors
    _vendors = None


@contextmanager
def register_plugin(plugin: ModuleType | object, name: str | None = None) -> Iterator[str]:
    """Register *plugin* for the duration of a ``with`` block (tests, notebooks).

    Yields the name it was registered under and unregisters it afterwards,
    even when the block raises.
    """
    manager = get_plugin_manager()
    with _lock:
        registered = manager.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin {name or plugin!r} is blocked or already registered")
        try:
            _check(manager)
        except PluginError:
            manager.unregister(plugin)
            raise
        _invalidate()
    try:
        yield registered
    finally:
        with _lock:
            manager.unregister(plugin)
            _invalidate()


def reset_plugin_manager() -> None:
    """Forget every loaded plugin so the next use loads afresh (tests only)."""
    global _manager
    with _lock:
        _manager = None
        _distributions.clear()
        _failures.clear()
        _invalidate()
