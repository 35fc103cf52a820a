"""oomnitza-connect: sync SaaS vendors' users into one system of record.

The public API is re-exported here; vendor plugins and the CLI use the same.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .connectors import Connector, get_connector, list_connectors  # noqa: E402
from .errors import (  # noqa: E402
    AuthenticationError,
    ConfigurationError,
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
from .hookspecs import hookimpl  # noqa: E402
from .models import (  # noqa: E402
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
from .redaction import Secret  # noqa: E402

__all__ = [
    "AuthKind",
    "AuthenticationError",
    "ConfigurationError",
    "Connector",
    "Credential",
    "FieldMapping",
    "FieldSpec",
    "FieldType",
    "GlobalSetting",
    "IntegrationSettings",
    "MappingError",
    "OomnitzaConnectError",
    "PaginationError",
    "Person",
    "PluginError",
    "Preset",
    "PresetError",
    "RateBudget",
    "RateLimitError",
    "SaasUser",
    "Secret",
    "StoreError",
    "SyncPreference",
    "SyncSession",
    "TransportError",
    "UnknownVendorError",
    "UserSelection",
    "VendorAPIError",
    "VendorInfo",
    "VendorRecord",
    "__version__",
    "get_connector",
    "hookimpl",
    "list_connectors",
]
