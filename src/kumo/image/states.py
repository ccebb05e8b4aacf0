"""Image states with Glance's wire values and the one table of legal moves.

``queued`` -> ``saving`` -> ``active`` is the upload path; ``uploading`` ->
``importing`` -> ``active`` the interoperable import path. A failed upload
goes back to ``queued`` (the client may retry), a broken import to
``queued`` as well; ``killed`` marks data that was lost after it was
accepted. Admins may ``deactivate`` an active image and ``reactivate`` it.
"""

from __future__ import annotations

from enum import StrEnum

from kumo.core import errors


class ImageStatus(StrEnum):
    QUEUED = "queued"
    SAVING = "saving"
    UPLOADING = "uploading"
    IMPORTING = "importing"
    ACTIVE = "active"
    KILLED = "killed"
    DEACTIVATED = "deactivated"
    DELETED = "deleted"


S = ImageStatus
TRANSITIONS: dict[ImageStatus, frozenset[ImageStatus]] = {
    S.QUEUED: frozenset({S.SAVING, S.UPLOADING, S.ACTIVE, S.DELETED}),
    S.SAVING: frozenset({S.ACTIVE, S.QUEUED, S.KILLED, S.DELETED}),
    S.UPLOADING: frozenset({S.IMPORTING, S.QUEUED, S.DELETED}),
    S.IMPORTING: frozenset({S.ACTIVE, S.QUEUED, S.KILLED, S.DELETED}),
    S.ACTIVE: frozenset({S.DEACTIVATED, S.DELETED}),
    S.DEACTIVATED: frozenset({S.ACTIVE, S.DELETED}),
    S.KILLED: frozenset({S.DELETED}),
    S.DELETED: frozenset(),
}


def check_transition(current: str, target: ImageStatus) -> None:
    """409 with Glance's wording when ``current`` may not become ``target``."""
    if target not in TRANSITIONS[ImageStatus(current)]:
        raise errors.Conflict(f"Image status transition from {current} to {target.value} is not allowed")


class MemberStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    SHARED = "shared"
    COMMUNITY = "community"


DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
