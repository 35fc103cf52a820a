"""The Webex workflow presets: named, reusable calls run by ``oomnitza_connect.presets``.

Create User, Update User and User Role need more than one call, and the
presets engine makes them for Python and the command line alike: Create User
looks the email up before the create and after a failed one (Webex may answer
400 although it created the person), Update User reads the person and sends
its writable fields whole (:func:`oomnitza_connect_webex.people.merge_for_update`,
also for :func:`~oomnitza_connect_webex.people.update_user`), and User Role
turns role ids into names with one ``GET /v1/roles`` per session
(:func:`oomnitza_connect_webex.people.user_role_mappings`).
"""

from __future__ import annotations

from oomnitza_connect.models import FindExisting, Preset

from .mapping import VENDOR
from .people import USER_ROLE_TARGETS, merge_for_update, user_role_mappings

__all__ = [
    "CREATE_USER",
    "DELETE_USER",
    "FIND_USER_BY_EMAIL",
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
FIND_USER_BY_EMAIL = "Find User By Email"

PRESETS: tuple[Preset, ...] = (
    # First: the demo (and anyone listing presets) meets the product's User Role workflow.
    Preset(
        vendor=VENDOR,
        name=USER_ROLE,
        description=(
            "A person's role names, status and last activity with GET /v1/people/{id}, "
            "role ids named through GET /v1/roles (once per session), stored on the SaaS "
            "user as the 'webex user-role' workflow stores them."
        ),
        method="GET",
        path="/people/{{webex_user_id}}",
        variables=("webex_user_id",),
        mapper=user_role_mappings,
        mapper_targets=USER_ROLE_TARGETS,
        endpoint="people.get",
    ),
    Preset(
        vendor=VENDOR,
        name=CREATE_USER,
        description=(
            "Add a person with POST /v1/people (first name, last name and email; scopes "
            "spark-admin:people_read and spark-admin:people_write). Webex may answer 400 "
            "although the person was created, so the email is looked up first (found: "
            "nothing is sent) and again after a failure (found: it counts as created)."
        ),
        method="POST",
        path="/people",
        body={
            "emails": ["{{email}}"],
            "firstName": "{{first_name}}",
            "lastName": "{{last_name}}",
            # Blank names leave it empty, for Webex's 400, not one space that passes.
            "displayName": "{{(first_name ~ ' ' ~ last_name).strip()}}",
        },
        variables=("email", "first_name", "last_name"),
        response_mappings={"Webex User Id": "{{response.id}}"},
        idempotent=False,
        find_existing=FindExisting(
            FIND_USER_BY_EMAIL, record="{{(response.get('items') or [None])[0]}}"
        ),
        endpoint="people.create",
    ),
    Preset(
        vendor=VENDOR,
        name=FIND_USER_BY_EMAIL,
        description=(
            "Look a person up by address with GET /v1/people?email= (Create User does, "
            "before and after its POST)."
        ),
        method="GET",
        path="/people",
        query={"email": "{{email}}"},
        variables=("email",),
        response_mappings={"Webex User Id": "{{(response.get('items') or [{}])[0].get('id')}}"},
        endpoint="people.list",
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
            "record, so the person is read first (Get User Details), its writable fields "
            "kept and the changes merged in; a field Webex requires and the record lacks "
            "comes back as Webex's 400, explained."
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
        # Only the PUT's writable fields go back (not id, created, status …), as
        # people.update_user sends them: that function runs this preset.
        merge=merge_for_update,
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
