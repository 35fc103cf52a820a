"""The plugin manager: loading, blocking, tracing and the vendor registry.

Loading is lazy (the first call to :func:`get_plugin_manager`) and idempotent,
because notebooks import and re-import freely. Entry points in the group
``oomnitza_connect`` are loaded one by one so that a plugin that fails to
import is reported by its distribution name while the others keep working.

Environment variables:

``OOMNITZA_CONNECT_PLUGINS``
    A comma-separated allow-list of entry-point or distribution names
    (``slack`` or ``oomnitza-connect-slack``); others are not loaded.
``OOMNITZA_CONNECT_BLOCK_PLUGINS``
    A comma-separated block-list, with the same names.
``OOMNITZA_CONNECT_TRACE_PLUGINS``
    Any non-empty value logs every hook call (hook, plugins, argument names,
    never values) and the type of its result at DEBUG level.

A plugin implementing a hook that does not exist (a misspelling) makes
loading fail with :class:`~oomnitza_connect.errors.PluginError` naming the
plugin and the hook; block the plugin to get going again.
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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, cast

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError, PluginLoadWarning, UnknownVendorError
from .models import VendorInfo
from .redaction import install_log_redaction

__all__ = [
    "FailedPlugin",
    "PluginDescription",
    "PluginDistribution",
    "describe_plugins",
    "failed_plugins",
    "get_plugin_manager",
    "loaded_distributions",
    "missing_vendor_hint",
    "plugin_selection_hint",
    "register_plugin",
    "reset_plugin_manager",
    "vendor_info",
    "vendor_infos",
    "vendor_object",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
ALLOW_ENV = "OOMNITZA_CONNECT_PLUGINS"
BLOCK_ENV = "OOMNITZA_CONNECT_BLOCK_PLUGINS"
TRACE_ENV = "OOMNITZA_CONNECT_TRACE_PLUGINS"
LOAD_ENTRY_POINTS_ENV = "OOMNITZA_CONNECT_LOAD_ENTRY_POINTS"

# Modules of the core that implement hooks themselves (the default mapping).
BUILTIN_PLUGINS = ("oomnitza_connect.sync.mapping",)


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


@attrs.frozen
class PluginDescription:
    """What one registered plugin provides (the ``plugins`` command shows it).

    :param distribution: the installed distribution, or ``None`` for a plugin
        registered by code (tests, notebooks).
    :param hooks: the hooks it implements.
    :param vendors: the vendors it registers.
    :param auth_kinds: the auth kinds of those vendors.
    :param presets: how many workflow presets it offers, for any vendor.
    """

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    vendors: tuple[str, ...]
    auth_kinds: tuple[str, ...]
    presets: int


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_distributions: list[PluginDistribution] = []
_failures: list[FailedPlugin] = []
_vendors: dict[str, tuple[VendorInfo, object | None]] | None = None


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, loading plugins on first use.

    :raises PluginError: an installed plugin implements a hook that does not
        exist (a misspelling); the message names the plugin and the hook.
    """
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
        loaded: list[PluginDistribution] = []
        failed: list[FailedPlugin] = []
        if os.environ.get(LOAD_ENTRY_POINTS_ENV, "1") != "0":
            _load_entry_points(manager, loaded, failed)
        _check(manager)
        if os.environ.get(TRACE_ENV):
            _enable_tracing(manager)
        _distributions[:] = loaded
        _failures[:] = failed
        _manager = manager
        return manager


def _load_entry_points(
    manager: pluggy.PluginManager,
    loaded: list[PluginDistribution],
    failed: list[FailedPlugin],
) -> None:
    allowed = _env_list(ALLOW_ENV)
    blocked = _env_list(BLOCK_ENV) or set()
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        dist_name = dist.name if dist is not None else entry_point.name
        # Either name works in the lists: the entry point's or the distribution's.
        names = {entry_point.name, dist_name}
        if allowed is not None and not names & allowed:
            continue
        if names & blocked:
            manager.set_blocked(entry_point.name)
            continue
        if manager.get_plugin(entry_point.name) is not None or manager.is_blocked(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=entry_point.name)
        except Exception as exc:
            message = f"{exc.__class__.__name__}: {exc}"
            failed.append(FailedPlugin(entry_point.name, dist_name, message))
            warnings.warn(
                f"oomnitza-connect plugin '{entry_point.name}' from distribution "
                f"'{dist_name}' failed to load and is skipped: {message}",
                PluginLoadWarning,
                stacklevel=3,
            )
            continue
        loaded.append(
            PluginDistribution(
                name=entry_point.name,
                distribution=dist_name,
                version=dist.version if dist is not None else "unknown",
                module=getattr(plugin, "__name__", None) or type(plugin).__module__,
            )
        )


def _check(manager: pluggy.PluginManager) -> None:
    """Fail on hook implementations that match no spec (pluggy's check_pending, reworded)."""
    for hook_name in sorted(vars(manager.hook)):
        caller = getattr(manager.hook, hook_name)
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            known = ", ".join(sorted(_spec_names()))
            raise PluginError(
                f"Plugin '{impl.plugin_name}' implements hook '{hook_name}', which does not "
                f"exist. Check the spelling; the hooks are: {known} "
                f"(see docs/plugins/hooks.md). To skip an installed plugin, add its name to "
                f"{BLOCK_ENV}."
            )


def _spec_names() -> list[str]:
    return [
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, f"{hookspecs.PROJECT_NAME}_spec")
    ]


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


def describe_plugins(*, include_builtin: bool = False) -> list[PluginDescription]:
    """Describe every registered plugin, entry-point ones first, then by name.

    :param include_builtin: also describe the core's own hook implementations.
    """
    manager = get_plugin_manager()
    by_name = {dist.name: dist for dist in loaded_distributions()}
    all_vendors = vendor_infos()
    described = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None or (name in BUILTIN_PLUGINS and not include_builtin):
            continue
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        vendors = _vendors_of(manager, plugin)
        kinds = sorted({str(kind) for v in vendors for kind in vendors[v].auth_kinds})
        presets = 0
        for impl in manager.hook.workflow_presets.get_hookimpls():
            if impl.plugin is plugin:
                for vendor in all_vendors:
                    offered = cast("Iterable[object] | None", impl.function(vendor=vendor))
                    presets += len(list(offered or ()))
        dist = by_name.get(name)
        described.append(
            PluginDescription(
                name=name,
                module=getattr(plugin, "__name__", None) or type(plugin).__module__,
                distribution=dist.distribution if dist else None,
                version=dist.version if dist else None,
                hooks=hooks,
                vendors=tuple(sorted(vendors)),
                auth_kinds=tuple(kinds),
                presets=presets,
            )
        )
    return sorted(described, key=lambda d: (d.distribution is None, d.name))


def _info_of(registered: object) -> VendorInfo:
    """A plugin registers a VendorInfo, or a vendor object whose ``info`` is one."""
    if isinstance(registered, VendorInfo):
        return registered
    info = getattr(registered, "info", None)
    if isinstance(info, VendorInfo):
        return info
    raise PluginError(
        f"register_vendors must be given VendorInfo or vendor objects, not {registered!r}."
    )


def _vendors_of(manager: pluggy.PluginManager, plugin: object) -> dict[str, VendorInfo]:
    found: dict[str, VendorInfo] = {}
    for impl in manager.hook.register_vendors.get_hookimpls():
        if impl.plugin is plugin:

            def register(registered: object) -> None:
                info = _info_of(registered)
                found[info.name] = info

            impl.function(register=register)
    return found


def _load_vendors() -> dict[str, tuple[VendorInfo, object | None]]:
    global _vendors
    with _lock:
        if _vendors is None:
            found: dict[str, tuple[VendorInfo, object | None]] = {}

            def register(registered: object) -> None:
                info = _info_of(registered)
                if info.name in found:
                    raise PluginError(f"Vendor '{info.name}' is registered by two plugins.")
                found[info.name] = (info, None if registered is info else registered)

            get_plugin_manager().hook.register_vendors(register=register)
            _vendors = found
        return _vendors


def vendor_infos() -> dict[str, VendorInfo]:
    """Return every registered vendor by connector name."""
    return {name: info for name, (info, _) in _load_vendors().items()}


def vendor_object(name: str) -> object | None:
    """Return the vendor object registered for *name*, or ``None`` for a bare VendorInfo."""
    vendor_info(name)
    return _load_vendors()[name][1]


def vendor_info(name: str) -> VendorInfo:
    """Return the vendor called *name*.

    :raises UnknownVendorError: no registered plugin provides it; the message
        lists the installed vendors.
    """
    vendors = vendor_infos()
    try:
        return vendors[name]
    except KeyError:
        raise UnknownVendorError(name, list(vendors), hint=missing_vendor_hint()) from None


def missing_vendor_hint() -> str | None:
    """Say what may hide an installed vendor: plugin-selection variables, plugins that failed."""
    hints = [plugin_selection_hint(), _failures_hint()]
    return "; ".join(h for h in hints if h) or None


def _failures_hint() -> str | None:
    """Name the plugins that failed to load: the vendor asked for may be one of them."""
    if not _failures:
        return None
    listed = ", ".join(f"'{f.name}' ({f.distribution}: {f.error})" for f in _failures)
    return f"plugins that failed to load: {listed}"


def plugin_selection_hint() -> str | None:
    """Say which plugin-selection variables are set, since they may hide a vendor."""
    chosen = [f"${env}={os.environ[env]!r}" for env in (ALLOW_ENV, BLOCK_ENV) if env in os.environ]
    if not chosen:
        return None
    return f"{' and '.join(chosen)} may leave it out"


def _invalidate() -> None:
    global _vendors
    _vendors = None


@contextmanager
def register_plugin(plugin: ModuleType | object, name: str | None = None) -> Iterator[str]:
    """Register *plugin* for the duration of a ``with`` block (tests, notebooks).

    Yields the name it was registered under and unregisters it afterwards,
    even when the block raises.

    :raises PluginError: the plugin is blocked, already registered, or
        implements a hook wrongly (unknown name, unknown argument).
    """
    manager = get_plugin_manager()
    if name is None and not isinstance(plugin, ModuleType):
        # A vendor object is named after the module that defines it.
        name = getattr(plugin, "__name__", None) or type(plugin).__module__
    label = name or getattr(plugin, "__name__", None) or repr(plugin)
    with _lock:
        try:
            registered = manager.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            # pluggy's message spans lines; keep it one readable sentence.
            detail = " ".join(str(exc).split())
            raise PluginError(f"Plugin '{label}' implements a hook wrongly: {detail}") from None
        except ValueError as exc:
            raise PluginError(f"Plugin '{label}' cannot be registered: {exc}") from None
        if registered is None:
            raise PluginError(f"Plugin '{label}' is blocked and cannot be registered.")
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
            if manager.is_registered(plugin):
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
