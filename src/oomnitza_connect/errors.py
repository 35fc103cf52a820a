"""Every error the SDK raises derives from :class:`OomnitzaConnectError`.

Messages are complete sentences a user can act on; structured attributes carry
the same facts for programs (vendor, HTTP status, vendor error code, request id,
the path of a bad configuration key).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .redaction import redact

if TYPE_CHECKING:
    from .models import Preset

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConversionError",
    "CredentialRefusedError",
    "MalformedResponseError",
    "MappingError",
    "MissingExtraError",
    "MissingVariableError",
    "NotificationError",
    "OomnitzaConnectError",
    "PaginationError",
    "PluginError",
    "PresetError",
    "RateLimitError",
    "StoreError",
    "TemplateError",
    "TransportError",
    "UndefinedVariableError",
    "UnknownVendorError",
    "UnsafeURLError",
    "VendorAPIError",
]


def did_you_mean(name: str, known: Iterable[str], *, shared_prefix: str = "") -> str:
    """Return ``"; did you mean 'X'?"`` for the entry of *known* closest to *name*, else ``""``.

    Put after the sentence that refuses *name* and before ``(allowed: …)``, so
    that every error naming a misspelling reads the same. Not in ``__all__``:
    that lists the error classes the package re-exports.

    :param shared_prefix: a prefix *name* and the entries share (``Slack.``),
        left out of the comparison: it would make any two names look alike.
    """
    import difflib  # only when a name is refused

    by_rest = {
        entry[len(shared_prefix) :]: entry for entry in known if entry.startswith(shared_prefix)
    }
    rest = name[len(shared_prefix) :] if name.startswith(shared_prefix) else name
    close = difflib.get_close_matches(rest, list(by_rest), n=1)
    return f"; did you mean '{by_rest[close[0]]}'?" if close else ""


class OomnitzaConnectError(Exception):
    """Base class of every error raised by oomnitza-connect."""


class ConfigurationError(OomnitzaConnectError):
    """A configuration file or value is wrong.

    :param file: the file that holds the bad value, when there is one.
    :param key_path: dotted path of the bad key inside the file (``mapping[2].target``).
    :param value: the value that was found (never a secret).
    :param allowed: what would have been accepted.

    ``message`` is the sentence alone, without the file, key and allowed values
    that ``str()`` adds.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key_path: str | None = None,
        value: Any = None,
        allowed: str | None = None,
        problems: Sequence[str] = (),
    ) -> None:
        self.message = message
        self.file = file
        self.key_path = key_path
        self.value = value
        self.allowed = allowed
        self.problems = tuple(problems)
        parts = []
        if file:
            parts.append(f"{file}:")
        if key_path:
            parts.append(f"key '{key_path}':")
        parts.append(message)
        if allowed:
            parts.append(f"(allowed: {allowed})")
        text = " ".join(parts)
        if self.problems:
            text += "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(text)


class PluginError(OomnitzaConnectError):
    """A plugin could not be loaded or implements a hook wrongly."""


class UnknownVendorError(PluginError):
    """No installed plugin provides the requested vendor.

    :param hint: what else may explain it (a plugin-selection variable, a
        plugin that failed to load), put last.
    :param file: the file that names the vendor, when there is one.
    :param key_path: the key that names it (``vendor``); with it the message
        takes :class:`ConfigurationError`'s shape, ``FILE: key 'vendor': …``.
    """

    def __init__(
        self,
        vendor: str,
        installed: Sequence[str],
        *,
        hint: str | None = None,
        file: str | None = None,
        key_path: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.installed = tuple(installed)
        self.hint = hint
        self.file = file
        self.key_path = key_path
        names = sorted(installed)
        suggestion = did_you_mean(vendor, names)
        if key_path is None:
            listing = ", ".join(names) or "none"
            message = (
                f"no connector named '{vendor}' is installed{suggestion} (installed: {listing})"
            )
        else:
            allowed = (
                f"(allowed: {', '.join(names)})" if names else "(no vendor plugin is installed)"
            )
            message = (
                f"key '{key_path}': bad value '{vendor}': no installed plugin provides it"
                f"{suggestion} {allowed}"
            )
            if file:
                message = f"{file}: {message}"
        super().__init__(f"{message}; {hint}" if hint else message)


class AuthenticationError(OomnitzaConnectError):
    """Credentials were refused or could not be obtained.

    ``message`` is the sentence alone, without the vendor and the details that
    ``str()`` adds, for code that words its own error around it.
    """

    def __init__(
        self,
        message: str,
        *,
        vendor: str | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.status = status
        self.code = code
        self.request_id = request_id
        self.message = message
        super().__init__(_with_details(message, vendor, status, code, request_id))


class VendorAPIError(OomnitzaConnectError):
    """A vendor answered with an error.

    :param vendor: the vendor's connector name.
    :param status: the HTTP status (Slack reports most errors as 200).
    :param code: the vendor's own error code (``invalid_auth``, ``admin_not_found``).
    :param request_id: the vendor's request or tracking id, for its support desk.
    """

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.status = status
        self.code = code
        self.vendor_message = message
        self.request_id = request_id
        self.method = method
        self.endpoint = endpoint
        where = f" on {method} {endpoint}" if method and endpoint else ""
        super().__init__(_with_details(f"{message}{where}", vendor, status, code, request_id))


# AuthenticationError.vendor is optional, VendorAPIError.vendor is not; here it is always set.
class CredentialRefusedError(AuthenticationError, VendorAPIError):  # type: ignore[misc]
    """The vendor answered 401 (or flagged an expired token) and no renewal helped.

    It is both an :class:`AuthenticationError` (the credential is the problem)
    and a :class:`VendorAPIError` (with the status, code and request id), so
    code catching either sees it.
    """

    def __init__(
        self,
        message: str,
        *,
        vendor: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        # VendorAPIError sets every attribute both parents have and formats the message once.
        self.message = message
        VendorAPIError.__init__(
            self,
            message,
            vendor=vendor,
            status=status,
            code=code,
            request_id=request_id,
            method=method,
            endpoint=endpoint,
        )


class RateLimitError(VendorAPIError):
    """The vendor kept rate limiting after every retry the policy allows."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class PaginationError(VendorAPIError):
    """Pagination cannot continue safely (for example a cursor that repeats)."""


class TransportError(OomnitzaConnectError):
    """The vendor could not be reached (DNS, TLS, connection refused, time-out)."""

    def __init__(self, message: str, *, vendor: str | None = None) -> None:
        self.vendor = vendor
        super().__init__(f"{vendor}: {message}" if vendor else message)


class MappingError(OomnitzaConnectError):
    """A record could not be mapped (a converter failed, a required field is missing)."""

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"field '{field}': {message}" if field else message)


class PresetError(OomnitzaConnectError):
    """A workflow preset could not be rendered or run."""


class MissingExtraError(OomnitzaConnectError, ImportError):
    """An optional dependency is not installed."""


class NotificationError(OomnitzaConnectError):
    """A notification could not be sent."""


class StoreError(OomnitzaConnectError):
    """The store could not be read or written."""


class MalformedResponseError(VendorAPIError):
    """The vendor answered with a body that is not the JSON it promised."""


class ConversionError(MappingError):
    """A converter could not convert a value."""


class TemplateError(OomnitzaConnectError):
    """A template or expression could not be compiled or evaluated."""

    def __init__(self, message: str, *, template: str | None = None) -> None:
        self.template = template
        suffix = f" in template {template!r}" if template else ""
        super().__init__(f"{message}{suffix}")


class UndefinedVariableError(TemplateError):
    """A template used a variable that was not given.

    ``owner`` is set when *name* is an attribute or key looked up on a value
    that has none (``email.endswith`` with ``email`` None): the message then
    names that value's type instead of calling *name* a variable.
    """

    def __init__(self, name: str, *, template: str | None = None, owner: str | None = None) -> None:
        self.name = name
        self.owner = owner
        if owner is None:
            message = f"variable '{name}' is not defined"
        else:
            message = f"{owner} has no attribute or key '{name}'"
        super().__init__(message, template=template)


class MissingVariableError(PresetError):
    """A preset needs a variable that nobody supplied."""

    def __init__(self, preset: Preset, name: str, *, where: str | None = None) -> None:
        self.preset = preset.name
        self.vendor = preset.vendor
        self.name = name
        place = f" in its {where}" if where else ""
        super().__init__(
            f"Preset '{preset.name}' of {preset.vendor} needs the variable '{name}'{place}, "
            f"but neither the caller (--var {name}=...), the person, the person's "
            f"{preset.vendor} account nor the vendor settings provide it."
        )


class UnsafeURLError(PresetError):
    """A rendered URL would leave the credential's base URL."""

    def __init__(self, url: str, base_url: str, reason: str) -> None:
        self.url = url
        self.base_url = base_url
        self.reason = reason
        super().__init__(
            f"The preset request was refused because {reason}: "
            f"'{redact(url)}' is not under '{base_url}'."
        )


def _with_details(
    message: str,
    vendor: str | None,
    status: int | None,
    code: str | None,
    request_id: str | None,
) -> str:
    details = []
    if status is not None:
        details.append(f"HTTP {status}")
    if code:
        details.append(f"code {code}")
    if request_id:
        details.append(f"request id {request_id}")
    prefix = f"{vendor}: " if vendor else ""
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{prefix}{message}{suffix}"


class PluginLoadWarning(RuntimeWarning):
    """An installed plugin failed to load and is skipped; the others keep working.

    A warning, not an error: one broken distribution must not stop every vendor.
    The command line prints it as one line (``Warning: ...``).
    """
