"""oomnitza-connect: sync SaaS vendors' users into one system of record.

The public API is re-exported here; vendor plugins and the CLI use the same.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._version import __version__

# A library prints nothing the application did not ask for. Without a handler of
# its own, the SDK's records reach Python's last-resort handler when nobody
# configured logging, and a script's stderr repeats what run_sync returns (a
# failed run's reason is in the session). An application that configures logging
# (the command line does) sees every record, as the records still propagate.
logging.getLogger(__name__).addHandler(logging.NullHandler())

if TYPE_CHECKING:
    # The Python API for scripts and notebooks (sync, store, mapping suggestions).
    from .api import (
        MappingSuggestion,
        MissingExtraError,
        SyncPhase,
        SyncProgress,
        default_db_path,
        draft_problems,
        integration_template,
        launch_integration,
        list_users,
        load_integration,
        login,
        open_store,
        run_sync,
        suggest_mapping,
        to_dataframe,
    )
    from .connectors import Connector, get_connector, list_connectors
    from .errors import (
        AuthenticationError,
        ConfigurationError,
        ConversionError,
        CredentialRefusedError,
        MalformedResponseError,
        MappingError,
        MissingVariableError,
        NotificationError,
        OomnitzaConnectError,
        PaginationError,
        PluginError,
        PresetError,
        RateLimitError,
        StoreError,
        TemplateError,
        TransportError,
        UndefinedVariableError,
        UnknownVendorError,
        UnsafeURLError,
        VendorAPIError,
    )
    from .hookspecs import hookimpl
    from .models import (
        AuthKind,
        Credential,
        FieldMapping,
        FieldSpec,
        FieldType,
        GlobalSetting,
        IntegrationSettings,
        Person,
        Preset,
        RateBudget,
        SaasUser,
        SettingKind,
        SyncPreference,
        SyncSession,
        UnreadRecord,
        UserSelection,
        VendorInfo,
        VendorRecord,
    )
    from .plugins import FailedPlugin, PluginDescription, describe_plugins, failed_plugins
    from .presets.engine import (
        PresetOverrides,
        PresetResult,
        get_preset,
        list_presets,
        render_preset,
        run_preset,
        run_preset_bulk,
    )
    from .redaction import Secret
    from .store.sqlite import SQLiteStore
    from .transport.http import ClientOptions

# Every public name is imported on first use (PEP 562), so that
# `import oomnitza_connect` and the command line's start-up cost almost nothing;
# `from oomnitza_connect import run_sync` loads only what a sync needs.
_LAZY: dict[str, str] = {
    "MappingSuggestion": "oomnitza_connect.api",
    "MissingExtraError": "oomnitza_connect.api",
    "SyncPhase": "oomnitza_connect.api",
    "SyncProgress": "oomnitza_connect.api",
    "default_db_path": "oomnitza_connect.api",
    "draft_problems": "oomnitza_connect.api",
    "integration_template": "oomnitza_connect.api",
    "launch_integration": "oomnitza_connect.api",
    "login": "oomnitza_connect.api",
    "list_users": "oomnitza_connect.api",
    "load_integration": "oomnitza_connect.api",
    "open_store": "oomnitza_connect.api",
    "run_sync": "oomnitza_connect.api",
    "suggest_mapping": "oomnitza_connect.api",
    "to_dataframe": "oomnitza_connect.api",
    "Connector": "oomnitza_connect.connectors",
    "get_connector": "oomnitza_connect.connectors",
    "list_connectors": "oomnitza_connect.connectors",
    "AuthenticationError": "oomnitza_connect.errors",
    "ConfigurationError": "oomnitza_connect.errors",
    "ConversionError": "oomnitza_connect.errors",
    "CredentialRefusedError": "oomnitza_connect.errors",
    "MalformedResponseError": "oomnitza_connect.errors",
    "MappingError": "oomnitza_connect.errors",
    "MissingVariableError": "oomnitza_connect.errors",
    "NotificationError": "oomnitza_connect.errors",
    "OomnitzaConnectError": "oomnitza_connect.errors",
    "PaginationError": "oomnitza_connect.errors",
    "PluginError": "oomnitza_connect.errors",
    "PresetError": "oomnitza_connect.errors",
    "RateLimitError": "oomnitza_connect.errors",
    "StoreError": "oomnitza_connect.errors",
    "TemplateError": "oomnitza_connect.errors",
    "TransportError": "oomnitza_connect.errors",
    "UndefinedVariableError": "oomnitza_connect.errors",
    "UnknownVendorError": "oomnitza_connect.errors",
    "UnsafeURLError": "oomnitza_connect.errors",
    "VendorAPIError": "oomnitza_connect.errors",
    "hookimpl": "oomnitza_connect.hookspecs",
    "FailedPlugin": "oomnitza_connect.plugins",
    "PluginDescription": "oomnitza_connect.plugins",
    "describe_plugins": "oomnitza_connect.plugins",
    "failed_plugins": "oomnitza_connect.plugins",
    "AuthKind": "oomnitza_connect.models",
    "Credential": "oomnitza_connect.models",
    "FieldMapping": "oomnitza_connect.models",
    "FieldSpec": "oomnitza_connect.models",
    "FieldType": "oomnitza_connect.models",
    "GlobalSetting": "oomnitza_connect.models",
    "IntegrationSettings": "oomnitza_connect.models",
    "Person": "oomnitza_connect.models",
    "Preset": "oomnitza_connect.models",
    "RateBudget": "oomnitza_connect.models",
    "SaasUser": "oomnitza_connect.models",
    "SettingKind": "oomnitza_connect.models",
    "SyncPreference": "oomnitza_connect.models",
    "SyncSession": "oomnitza_connect.models",
    "UnreadRecord": "oomnitza_connect.models",
    "UserSelection": "oomnitza_connect.models",
    "VendorInfo": "oomnitza_connect.models",
    "VendorRecord": "oomnitza_connect.models",
    "PresetOverrides": "oomnitza_connect.presets.engine",
    "PresetResult": "oomnitza_connect.presets.engine",
    "get_preset": "oomnitza_connect.presets.engine",
    "list_presets": "oomnitza_connect.presets.engine",
    "render_preset": "oomnitza_connect.presets.engine",
    "run_preset": "oomnitza_connect.presets.engine",
    "run_preset_bulk": "oomnitza_connect.presets.engine",
    "Secret": "oomnitza_connect.redaction",
    "SQLiteStore": "oomnitza_connect.store.sqlite",
    "ClientOptions": "oomnitza_connect.transport.http",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'oomnitza_connect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found directly next time
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AuthKind",
    "AuthenticationError",
    "ClientOptions",
    "ConfigurationError",
    "Connector",
    "ConversionError",
    "Credential",
    "CredentialRefusedError",
    "FailedPlugin",
    "FieldMapping",
    "FieldSpec",
    "FieldType",
    "GlobalSetting",
    "IntegrationSettings",
    "MalformedResponseError",
    "MappingError",
    "MappingSuggestion",
    "MissingExtraError",
    "MissingVariableError",
    "NotificationError",
    "OomnitzaConnectError",
    "PaginationError",
    "Person",
    "PluginDescription",
    "PluginError",
    "Preset",
    "PresetError",
    "PresetOverrides",
    "PresetResult",
    "RateBudget",
    "RateLimitError",
    "SQLiteStore",
    "SaasUser",
    "Secret",
    "SettingKind",
    "StoreError",
    "SyncPhase",
    "SyncPreference",
    "SyncProgress",
    "SyncSession",
    "TemplateError",
    "TransportError",
    "UndefinedVariableError",
    "UnknownVendorError",
    "UnreadRecord",
    "UnsafeURLError",
    "UserSelection",
    "VendorAPIError",
    "VendorInfo",
    "VendorRecord",
    "__version__",
    "default_db_path",
    "describe_plugins",
    "draft_problems",
    "failed_plugins",
    "get_connector",
    "get_preset",
    "hookimpl",
    "integration_template",
    "launch_integration",
    "list_connectors",
    "list_presets",
    "list_users",
    "load_integration",
    "login",
    "open_store",
    "render_preset",
    "run_preset",
    "run_preset_bulk",
    "run_sync",
    "suggest_mapping",
    "to_dataframe",
]
