"""Who saved a label: the person the server's identity provider vouched for, when authentication is on.

MONAI Label (``MONAI_LABEL_AUTH_ENABLE``) verifies each request's bearer token in its ``RBAC``
dependency, then passes only the client's form fields to the datastore: the label save never learns
whose token it was. The app's token check (``main._JWTWithAlgorithms``) notes the verified claims for
the request here; the datastore records them in the label's info (``annotator``) and, with a PACS,
as the SEG's ContentCreatorName (0070,0084), and a prediction served is matched to the label saved
after it by that person (:func:`requester`), not by the client id. A token that fails the check notes
nothing, and the request is refused before any endpoint runs. Without authentication nothing is
noted: the client id (``client_id``) a client sends is its own word, not a verified person.
"""

from __future__ import annotations

import contextvars
from typing import Any

#: the verified annotator of the current request: {"username", "name", "person_name"}; None without authentication
_VERIFIED: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("monai_bac_annotator",
                                                                                  default=None)

#: the longest DICOM person name (PN: 64 characters a component group)
_PN_MAX = 64


def person_name(claims: dict[str, Any], name_claim: str = "name") -> str:
    """The DICOM person name (PN) for a token's claims: ``Family^Given`` from OpenID Connect's
    ``family_name`` and ``given_name`` when both are there, else the display name as given, else ""."""
    from pydicom.valuerep import PersonName

    family, given = (str(claims.get(k) or "").replace("^", " ").strip() for k in ("family_name", "given_name"))
    if family and given:
        name = str(PersonName.from_named_components(family_name=family, given_name=given))
    else:
        name = str(claims.get(name_claim) or "").replace("^", " ").strip()
    return name[:_PN_MAX]


def note_verified(claims: dict[str, Any], username_claim: str, name_claim: str) -> None:
    """Note, for the rest of this request, the claims of a token that has just passed verification."""
    username = str(claims.get(username_claim) or "").strip()
    if not username:
        return
    _VERIFIED.set({"username": username, "name": str(claims.get(name_claim) or "").strip(),
                   "person_name": person_name(claims, name_claim) or username[:_PN_MAX]})


def verified_annotator() -> dict[str, str] | None:
    """The current request's verified annotator (:func:`note_verified`), or None."""
    found = _VERIFIED.get()
    return dict(found) if found else None


def requester(client_id: Any = None) -> str | None:
    """Whom a prediction served and a label saved later are matched by: the verified user
    (``user:<username>``) when authentication is on, else the client id the client sent, else None."""
    found = _VERIFIED.get()
    if found:
        return f"user:{found['username']}"
    return str(client_id) if client_id else None
