"""Where a Talkdesk account lives: its token host and API host, from subdomain and region.

Talkdesk runs separate identity (token) hosts per account and per region and
one API gateway per region, so a user names only the subdomain
(``mycompany`` for ``https://mycompany.talkdeskapp.com``) and the region.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["DEFAULT_REGION", "REGIONS", "Region", "api_base_url", "token_url", "valid_subdomain"]


@attrs.frozen
class Region:
    """The hosts of one Talkdesk region.

    :param token_domain: the identity host's domain; the account's token host is
        ``{subdomain}.{token_domain}``.
    :param api_host: the API gateway.
    :param api_host_confirmed: ``False`` when Talkdesk's documentation does not
        name the API host (AU); it can be overridden with ``Talkdesk.ApiBaseUrl``.
    """

    code: str
    token_domain: str
    api_host: str
    api_host_confirmed: bool = True


REGIONS: dict[str, Region] = {
    "US": Region("US", "talkdeskid.com", "api.talkdeskapp.com"),
    "EU": Region("EU", "talkdeskid.eu", "api.talkdeskapp.eu"),
    "CA": Region("CA", "talkdeskidca.com", "api.talkdeskappca.com"),
    # Talkdesk documents only AU's token host; the API host follows the EU pattern.
    "AU": Region("AU", "talkdeskid.au", "api.talkdeskapp.au", api_host_confirmed=False),
}
DEFAULT_REGION = "US"

# A DNS label: what can stand before ".talkdeskid.com".
_SUBDOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def valid_subdomain(value: str) -> bool:
    return bool(_SUBDOMAIN.match(value))


def token_host(subdomain: str, region: str) -> str:
    return f"{subdomain}.{REGIONS[region].token_domain}"


def token_url(subdomain: str, region: str) -> str:
    """``https://mycompany.talkdeskid.eu/oauth/token`` for ``mycompany`` in EU."""
    return f"https://{token_host(subdomain, region)}/oauth/token"


def api_base_url(region: str) -> str:
    """``https://api.talkdeskapp.eu`` for EU."""
    return f"https://{REGIONS[region].api_host}"
