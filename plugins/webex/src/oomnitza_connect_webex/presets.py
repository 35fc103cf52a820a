"""The Webex workflow presets: named, reusable calls run by ``oomnitza_connect.presets``.

Create User, Update User and User Role need more than one call; the
declarative presets here are what ``presets run`` sends, and
:mod:`oomnitza_connect_webex.people` holds the same calls with their logic
(look up by email before a retried create, read-merge-write with only the
writable fields, role names from ``GET /v1/roles``).
"""

from __future__ import annotations

from oomnitza_connect.models import Preset

from .mapping import VENDOR

__all__ = [
    "CREATE_USER",
    "DELETE_USER",
    "GET_USER_DETAILS",
    "PRESETS",
    "UPDATE_USER",
    "USER_ROLE",
]

_PERSON_RESPONSE_MAPPINGS = {
    "Webex User Id": "{{response.id}}",
    "Webex Status": "{{response.get('status')}}",
    "Webex Last Activity": "{{response.get('lastActivity')}}",
}

GET_USER_DETAILS = "Get User Details"
CREATE_USER = "Create User"
UPDATE_USER = "Update User"
DELETE_USER = "Delete User"
USER_ROLE = "User Role"

PRESETS: tuple[Preset, ...] = (
    # First: the demo (and anyone listing presets) meets the product's User Role workflow.
    Preset(
        vendor=VENDOR,
        name=USER_ROLE,
        description=(
            "A person's role ids, status and last activity with GET /v1/people/{id}; "
            "oomnitza_connect_webex.people.user_role and the 'webex user-role' command add "
            "the role names from GET /v1/roles."
        ),
        method="GET",
        path="/people/{{webex_user_id}}",
        variables=("webex_user_id",),
        response_mappings={
            "saas_user.role_ids": "{{response.get('roles') or []}}",
            "saas_user.status": "{{response.get('status')}}",
            "saas_user.last_activity": "{{response.get('lastActivity')}}",
        },
        endpoint="people.get",
    ),
    Preset(
        vendor=VENDOR,
        name=CREATE_USER,
        description=(
            "Add a person with POST /v1/people (first name, last name and email; scopes "
            "spark-admin:people_read and spark-admin:people_write). Webex may answer 400 "
            "although the person was created: look the email up before trying again "
            "(oomnitza_connect_webex.people.create_user does)."
        ),
        method="POST",
        path="/people",
        body={
            "emails": ["{{email}}"],
            "firstName": "{{first_name}}",
            "lastName": "{{last_name}}",
            "displayName": "{{first_name}} {{last_name}}",
        },
        variables=("email", "first_name", "last_name"),
        response_mappings={"Webex User Id": "{{response.id}}"},
        idempotent=False,
        endpoint="people.create",
    ),
    Preset(
        vendor=VENDOR,
        name=GET_USER_DETAILS,
        description="Read one person with GET /v1/people/{id} (admin fields with an admin token).",
        method="GET",
        path="/people/{{webex_user_id}}",
        variables=("webex_user_id",),
        response_mappings=_PERSON_RESPONSE_MAPPINGS,
        endpoint="people.get",
    ),
    Preset(
        vendor=VENDOR,
        name=UPDATE_USER,
        description=(
            "Change a person's names with PUT /v1/people/{id}. Webex replaces the whole "
            "record, so the person is read first (Get User Details) and the changes merged "
            "in; a field Webex requires and the record lacks comes back as Webex's 400."
        ),
        method="PUT",
        path="/people/{{webex_user_id}}",
        body={
            "firstName": "{{first_name}}",
            "lastName": "{{last_name}}",
            "displayName": "{{first_name}} {{last_name}}",
        },
        variables=("webex_user_id", "first_name", "last_name"),
        response_mappings={"Webex User Id": "{{response.id}}"},
        read_merge_write=GET_USER_DETAILS,
        endpoint="people.update",
    ),
    Preset(
        vendor=VENDOR,
        name=DELETE_USER,
        description=(
            "Remove a person with DELETE /v1/people/{id} (a full, user or external full "
            "administrator's token with spark-admin:people_write)."
        ),
        method="DELETE",
        path="/people/{{webex_user_id}}",
        variables=("webex_user_id",),
        endpoint="people.delete",
    ),
)
