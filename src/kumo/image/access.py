"""Who may see and change an image (Glance's visibility and membership rules).

* ``public``: everyone sees it; ``community``: everyone may use it, but it is
  listed only for its owner or when asked for with ``visibility=community``;
  ``shared``: the owner and the projects it was shared with (members) —
  listed for members once they accepted; ``private``: the owner only.
* Admins see everything.
* Only the owner (or an admin) changes an image; a member may only see it.
  Glance answers 404 for what you cannot see and 403 for what you can see
  but not change — kept here so every caller gets the same answer.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.image.models import Image, ImageMember


def can_see(ctx: AuthContext, image: Image, member_status: str | None) -> bool:
    """``member_status`` is the caller's membership of this image (None = not a member)."""
    if ctx.is_admin or image.owner == ctx.project_id:
        return True
    if image.visibility in ("public", "community"):
        return True
    return image.visibility == "shared" and member_status is not None


def require_owner(ctx: AuthContext, image: Image, action: str = "modify") -> None:
    """403 unless the caller owns the image (or is admin)."""
    if not (ctx.is_admin or (image.owner is not None and image.owner == ctx.project_id)):
        raise errors.Forbidden(f"You are not permitted to {action} this image.")


def list_condition(ctx: AuthContext, visibility: str | None, member_status: str) -> ColumnElement[bool] | None:
    """The SQL condition for ``GET /v2/images`` (None = no restriction)."""
    project = ctx.project_id
    statuses = ["pending", "accepted", "rejected"] if member_status == "all" else [member_status]
    shared_with_me = Image.id.in_(select(ImageMember.image_id).where(
        ImageMember.member_id == project, ImageMember.status.in_(statuses)))
    if visibility == "community":
        return Image.visibility == "community"
    if visibility == "public":
        return Image.visibility == "public"
    if visibility == "private":
        return and_(Image.visibility == "private", Image.owner == project) if not ctx.is_admin \
            else Image.visibility == "private"
    if visibility == "shared":
        base = Image.visibility == "shared"
        return base if ctx.is_admin else and_(base, or_(Image.owner == project, shared_with_me))
    if ctx.is_admin:  # community images only on request, or when the admin's own project owns them
        return None if visibility == "all" else or_(Image.visibility != "community", Image.owner == project)
    mine_or_public = or_(Image.owner == project, Image.visibility == "public",
                         and_(Image.visibility == "shared", shared_with_me))
    if visibility == "all":
        return or_(mine_or_public, Image.visibility == "community")
    return mine_or_public
