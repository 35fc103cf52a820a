"""Hook specifications: the contract between the core and its plugins.

Every hook takes the vendor's connector name as ``vendor``. An implementation
answers only for its own vendor and returns ``None`` otherwise, which is why
most hooks are ``firstresult``: the first plugin that answers wins. A vendor
plugin rarely writes these by hand: it registers one vendor object
(:class:`oomnitza_connect.vendors.Vendor`, usually the declarative
:class:`~oomnitza_connect.vendors.RestVendor`), whose implementations of these
hooks answer for its own vendor only. Plugins that are not vendors (an
auditing or redaction plugin) take part through wrappers, for example a
``map_record`` wrapper that sees every vendor's result. The reference page is
``docs/plugins/hooks.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .models import Credential, FieldMapping, Preset, UnreadRecord, VendorRecord
    from .transport.http import ClientOptions
    from .vendors.session import VendorSession

__all__ = ["hookimpl", "hookspec"]

PROJECT_NAME = "oomnitza_connect"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# ---------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------


@hookspec
def register_vendors(register: Callable[[Any], None]) -> None:
    """Register the vendors this plugin provides.

    Call ``register(vendor)`` once per vendor, with a vendor object
    (:class:`oomnitza_connect.vendors.Vendor`; it carries its own emulator and
    OAuth token-response parser) or a bare :class:`VendorInfo` for a plugin
    that implements the other hooks by hand. The description names the vendor,
    its auth kinds and scopes, its global settings, the fields it offers with
    their types, its standard mapping and its rate budget. A vendor object
    registers itself: its own ``register_vendors`` implementation does this.

    :param register: adds one vendor; registering a name twice is an error.
    :returns: nothing; the vendors are given to *register*.

    All implementations are called; the return value is ignored.
    """


# ---------------------------------------------------------------------------
# Talking to the vendor
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def authenticate(
    vendor: str,
    credential: Credential,
    settings: Mapping[str, str],
    options: ClientOptions,
) -> VendorSession | None:
    """Open an authenticated session with the vendor and check that it works.

    Build the HTTP client (``oomnitza_connect.transport.http.open_session`` does the
    usual work), make one cheap call that proves the credential (Slack's
    ``auth.test``, Intercom's ``/me``) and return the session. Raise
    :class:`~oomnitza_connect.errors.AuthenticationError` when the vendor
    refuses the credential.

    :param vendor: the connector name; return ``None`` for another vendor's.
    :param credential: the credential to use; secrets are :class:`Secret`.
    :param settings: the integration's global settings for this vendor.
    :param options: timeouts, base URL override, CA bundle, retry caps, and the
        listener of the client's waits; build the client with them (``attrs.evolve``
        to change one), so that a sync shows the credential check's retries.
    :returns: the open session, or ``None`` for another vendor.

    The first non-``None`` result wins.
    """


@hookspec(firstresult=True)
def list_users(vendor: str, session: VendorSession) -> Iterable[VendorRecord | UnreadRecord] | None:
    """Return the vendor's users as a lazy iterable of records.

    Fetch page after page as the caller iterates, never the whole list at
    once; every user must appear exactly once across all pages. Yield each
    user as an :class:`~oomnitza_connect.models.UnreadRecord` (its raw JSON
    and the function that reads it) rather than reading it in the generator:
    the sync engine then reads it inside its per-record error handling, and a
    user the plugin cannot read fails alone instead of ending the listing.

    :param vendor: the connector name; return ``None`` for another vendor's.
    :param session: the session :func:`authenticate` returned.
    :returns: an iterable (ideally a generator) of records, or ``None`` for another vendor.

    The first non-``None`` result wins.
    """


@hookspec(firstresult=True)
def map_record(
    vendor: str,
    record: VendorRecord,
    mapping: tuple[FieldMapping, ...],
    context: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Map one vendor record onto person fields.

    The core's built-in implementation applies *mapping* (sources,
    expressions, converters); a vendor plugin implements this hook only when
    its records need logic the mapping language cannot express. Wrappers
    (``@hookimpl(wrapper=True)``) may enrich or redact the result of any vendor.

    :param vendor: the connector name.
    :param record: the record to map.
    :param mapping: the integration's effective mapping.
    :param context: run facts usable in expressions: ``sync_time``,
        ``api_version``, ``default_role``, ``settings``.
    :returns: target field -> value, or ``None`` to leave the record to the next implementation.

    The first non-``None`` result wins.
    """


@hookspec
def workflow_presets(vendor: str) -> Iterable[Preset] | None:
    """Return the workflow presets this plugin offers for *vendor*.

    :param vendor: the connector name; return ``None`` or ``[]`` for another vendor's.
    :returns: the presets, each with ``vendor`` set to *vendor*.

    All results are collected; preset names must be unique per vendor.
    """


@hookspec(firstresult=True)
def list_last_logins(vendor: str, session: VendorSession) -> Iterable[Mapping[str, Any]] | None:
    """Return each user's last login, for vendors that publish access logs.

    Each item is ``{"vendor_user_id": str, "last_login": datetime}``, at most one per user.

    :param vendor: the connector name; return ``None`` when the vendor has no such data.
    :param session: the session :func:`authenticate` returned.
    :returns: an iterable of ``{"vendor_user_id", "last_login"}`` mappings, or ``None``.

    The first non-``None`` result wins.
    """


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------


@hookspec
def register_commands(cli: click.Group) -> None:
    """Register a plugin's own commands on the ``oomnitza-connect`` command line.

    Add them with ``cli.add_command(...)`` (or ``@cli.command()``), ideally as
    one group named after the vendor (``oomnitza-connect webex ...``). They are
    looked up when a command name is not one of the core's, and listed in
    ``--help``; a name the core already uses is ignored.

    An installed plugin should also declare each command in the entry-point
    group ``oomnitza_connect.commands`` (``webex = "pkg.commands:webex_group"``):
    ``--help`` and shell completion then list it from the metadata without
    importing the plugin; this hook serves plugins registered by code.

    :param cli: the group to add commands to.
    :returns: nothing; the commands are added to *cli*.

    All implementations are called; the return value is ignored.
    """
