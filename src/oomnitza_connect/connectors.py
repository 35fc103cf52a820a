"""The typed facade over the plugin manager: users never touch ``pm.hook``.

>>> import oomnitza_connect as oc
>>> slack = oc.get_connector("slack")
>>> with slack.authenticate(credential) as session:
...     for record in slack.list_users(session):
...         print(slack.map_record(record))
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from .errors import PluginError, PresetError
from .models import (
    Credential,
    FieldMapping,
    IntegrationSettings,
    Preset,
    UnreadRecord,
    VendorInfo,
    VendorRecord,
)
from .plugins import get_plugin_manager, vendor_info, vendor_infos, vendor_object
from .sync.mapping import read_record
from .transport.http import ClientOptions
from .vendors.base import Vendor
from .vendors.session import VendorSession

if TYPE_CHECKING:
    from .auth.oauth import TokenResponseParser

__all__ = ["Connector", "get_connector", "list_connectors"]


class Connector:
    """One vendor's connector: authenticate, list users, map records, presets."""

    def __init__(self, info: VendorInfo) -> None:
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    def __repr__(self) -> str:
        return f"<Connector {self.info.name!r}>"

    def authenticate(
        self,
        credential: Credential,
        settings: IntegrationSettings | Mapping[str, str] | None = None,
        *,
        options: ClientOptions | None = None,
    ) -> VendorSession:
        """Open a session with the vendor and prove the credential works.

        :param settings: the vendor's global settings, or a whole integration:
            then its settings and its ``base_url`` (an emulator, a proxy, a
            region) are used, as a sync of that integration would.
        :param options: HTTP options; the base URL defaults to the
            integration's, then the credential's, then the vendor's.
        """
        base_url = credential.base_url
        if isinstance(settings, IntegrationSettings):
            base_url = settings.base_url or base_url
            settings = settings.settings
        effective = self.effective_settings(settings)
        options = options or ClientOptions(base_url=base_url)
        if options.ca_bundle is None and credential.ca_bundle:
            # Plugins that build their own HttpClient see only the options.
            options = attrs.evolve(options, ca_bundle=credential.ca_bundle)
        if options.budget_account is None:
            # One vendor account, one budget: every client of this credential draws on it.
            options = attrs.evolve(options, budget_account=f"{self.name}:{credential.name}")
        session = get_plugin_manager().hook.authenticate(
            vendor=self.name,
            credential=credential,
            settings=effective,
            options=options,
        )
        if session is None:
            raise PluginError(f"no plugin implements 'authenticate' for vendor '{self.name}'")
        return session  # type: ignore[no-any-return]

    def effective_settings(self, settings: Mapping[str, str] | None) -> dict[str, str]:
        """Return the vendor's global settings with defaults filled in."""
        effective = {s.key: s.default for s in self.info.global_settings if s.default is not None}
        effective.update(settings or {})
        return effective

    def list_users(self, session: VendorSession) -> Iterator[VendorRecord]:
        """Yield the vendor's users, fetching pages lazily.

        :raises MappingError: a user the plugin cannot read (the sync engine
            reports such a user alone; see :meth:`list_user_records`).
        """
        for item in self.list_user_records(session):
            yield read_record(item) if isinstance(item, UnreadRecord) else item

    def list_user_records(self, session: VendorSession) -> Iterator[VendorRecord | UnreadRecord]:
        """Yield the vendor's users as the plugin gives them: read, or still to be read."""
        records = get_plugin_manager().hook.list_users(vendor=self.name, session=session)
        if records is None:
            raise PluginError(f"no plugin implements 'list_users' for vendor '{self.name}'")
        yield from records

    @property
    def vendor(self) -> Vendor | None:
        """The registered vendor object (``None`` when a plugin registered a bare VendorInfo)."""
        found = vendor_object(self.name)
        return found if isinstance(found, Vendor) else None

    def token_response_parser(self) -> TokenResponseParser | None:
        """Return the vendor's OAuth2 token-response parser, or ``None`` for RFC 6749's."""
        vendor = self.vendor
        return None if vendor is None else vendor.token_response_parser

    def list_last_logins(self, session: VendorSession) -> Iterator[Mapping[str, Any]] | None:
        """Yield each user's last login, or return ``None`` when the vendor has none."""
        logins = get_plugin_manager().hook.list_last_logins(vendor=self.name, session=session)
        return None if logins is None else iter(logins)

    def map_record(
        self,
        record: VendorRecord,
        mapping: tuple[FieldMapping, ...] | None = None,
        *,
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Map *record* with *mapping* (the vendor's standard mapping by default)."""
        run_context: dict[str, Any] = {
            "sync_time": datetime.now(UTC),
            "api_version": self.info.api_version,
            "vendor": self.name,
        }
        run_context.update(context or {})
        result = get_plugin_manager().hook.map_record(
            vendor=self.name,
            record=record,
            mapping=tuple(mapping if mapping is not None else self.info.standard_mapping),
            context=run_context,
        )
        if result is None:
            raise PluginError(f"no plugin implements 'map_record' for vendor '{self.name}'")
        return dict(result)

    def create_emulator(self, **options: Any) -> Any:
        """Return a new, not yet started emulator of this vendor's API.

        :param options: ``users``, ``port``, ``seed``, ``token``, ``max_page_size``;
            a vendor ignores the ones it does not know.
        :raises PluginError: the vendor's plugin offers no emulator.
        """
        vendor = self.vendor
        emulator = None if vendor is None else vendor.create_emulator(options)
        if emulator is None:
            raise PluginError(f"The '{self.name}' plugin offers no emulator.")
        return emulator

    def presets(self) -> list[Preset]:
        """Return the workflow presets offered for this vendor.

        :raises PresetError: a preset's template (response mappings included) is malformed.
        """
        from .presets.engine import check_preset

        found: list[Preset] = []
        seen: set[str] = set()
        for batch in get_plugin_manager().hook.workflow_presets(vendor=self.name):
            for preset in batch or ():
                if preset.vendor != self.name:
                    continue
                if preset.name in seen:
                    raise PluginError(f"preset '{preset.name}' of '{self.name}' is defined twice")
                seen.add(preset.name)
                # A malformed template is refused here, not when a person's run hits it.
                found.append(check_preset(preset))
        return found

    def person_fields(self, integration: IntegrationSettings | None = None) -> list[str]:
        """Return the person fields this vendor's people may carry, by name.

        The targets of *integration*'s mapping (the standard mapping without
        one), then what the presets write (response-mapping targets) and read
        (variable fields). A destination that keeps fields under ids of its own
        (Oomnitza: ``intercom_id``) reads them back under these names
        (``Intercom ID``), as the SQLite store holds them.
        """
        from .presets.engine import SAAS_USER_TARGET_PREFIX
        from .sync.integrations import effective_mapping
        from .sync.mapping import normalize_target

        if integration is not None:
            mapping = effective_mapping(integration, self.info)
        else:
            mapping = self.info.standard_mapping
        names = [normalize_target(m.target) for m in mapping]
        for preset in self.presets():
            names += [
                normalize_target(target)
                for target in preset.response_mappings
                if not target.startswith(SAAS_USER_TARGET_PREFIX)
            ]
            names += preset.variable_fields.values()
        return list(dict.fromkeys(names))

    def preset(self, name: str) -> Preset:
        """Return the preset called *name* (case-insensitive)."""
        for preset in self.presets():
            if preset.name.lower() == name.lower():
                return preset
        names = ", ".join(p.name for p in self.presets()) or "none"
        raise PresetError(f"{self.name} has no preset named '{name}' (available: {names})")


def list_connectors() -> list[Connector]:
    """Return a connector for every installed vendor, sorted by name."""
    return [Connector(info) for _, info in sorted(vendor_infos().items())]


def get_connector(name: str) -> Connector:
    """Return the connector for vendor *name*.

    :raises UnknownVendorError: no installed plugin provides it; the message
        lists the installed ones.
    """
    return Connector(vendor_info(name))
