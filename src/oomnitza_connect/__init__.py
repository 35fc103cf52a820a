"""oomnitza-connect: sync SaaS vendors' users into one system of record.

The public API is re-exported here; vendor plugins and the CLI use the same.
"""

from __future__ import annotations

__version__ = "0.1.0"

# The Python API for scripts and notebooks (sync, store, mapping suggestions).
from .api import (
    MappingSuggestion,
    MissingExtraError,
    SyncProgress,
    default_db_path,
    draft_problems,
    list_users,
    load_integration,
    open_store,
    run_sync,
    suggest_mapping,
    to_dataframe,
)
from .connectors import Connector, get_connector, list_connectors
from .errors import (
    AuthenticationError,
    ConfigurationError,
    CredentialRefusedError,
    MappingError,
    OomnitzaConnectError,
    PaginationError,
    PluginError,
    PresetError,
    RateLimitError,
    StoreError,
    TransportError,
    UnknownVendorError,
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
    SyncPreference,
    SyncSession,
    UserSelection,
    VendorInfo,
    VendorRecord,
)
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

__all__ = [
    "AuthKind",
    "AuthenticationError",
    "ConfigurationError",
    "Connector",
    "Credential",
    "CredentialRefusedError",
    "FieldMapping",
    "FieldSpec",
    "FieldType",
    "GlobalSetting",
    "IntegrationSettings",
    "MappingError",
    "MappingSuggestion",
    "MissingExtraError",
    "OomnitzaConnectError",
    "PaginationError",
    "Person",
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
    "StoreError",
    "SyncPreference",
    "SyncProgress",
    "SyncSession",
    "TransportError",
    "UnknownVendorError",
    "UserSelection",
    "VendorAPIError",
    "VendorInfo",
    "VendorRecord",
    "__version__",
    "default_db_path",
    "draft_problems",
    "get_connector",
    "get_preset",
    "hookimpl",
    "list_connectors",
    "list_presets",
    "list_users",
    "load_integration",
    "open_store",
    "render_preset",
    "run_preset",
    "run_preset_bulk",
    "run_sync",
    "suggest_mapping",
    "to_dataframe",
]
