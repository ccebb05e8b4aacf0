"""Image members: sharing a ``shared`` image with other projects (Glance v2).

The owner adds and removes members; a member project accepts or rejects the
share (only the member itself may change its status). A member sees the
image by id whatever its status, and in its image list once it accepted.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.db import utcnow
from kumo.image import access
from kumo.image.models import ImageMember
from kumo.image.service import ImageService
from kumo.image.states import MemberStatus


def member_dict(row: ImageMember) -> dict[str, Any]:
    return {"image_id": row.image_id, "member_id": row.member_id, "status": row.status,
            "created_at": row.created_at, "updated_at": row.updated_at}


class MemberService:
    def __init__(self, images: ImageService) -> None:
        self.images = images
        self.db = images.db

    async def add(self, ctx: AuthContext, image_id: str, member_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            image = await self.images.load(s, ctx, image_id)
            access.require_owner(ctx, image, "share")
            if image.visibility != "shared":
                raise errors.Forbidden(f"Image {image_id} is not a shared image: only images with visibility "
                                       f"'shared' can have members.")
            if await s.get(ImageMember, (image_id, member_id)) is not None:
                raise errors.Conflict(f"Member {member_id} already exists on image {image_id}.")
            quota = self.images.settings.image.image_member_quota
            count = await s.scalar(select(func.count()).select_from(ImageMember).where(
                ImageMember.image_id == image_id))
            if 0 <= quota <= int(count or 0):
                raise errors.OverQuota(f"Maximum number of image members exceeded: {quota}")
            now = utcnow()
            row = ImageMember(image_id=image_id, member_id=member_id, status=MemberStatus.PENDING, created_at=now,
                              updated_at=now)
            s.add(row)
            return member_dict(row)

    async def list(self, ctx: AuthContext, image_id: str) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            image = await self.images.load(s, ctx, image_id)
            if image.visibility != "shared":
                raise errors.Forbidden(f"Image {image_id} is not a shared image.")
            stmt = select(ImageMember).where(ImageMember.image_id == image_id).order_by(ImageMember.created_at)
            if not (ctx.is_admin or image.owner == ctx.project_id):
                stmt = stmt.where(ImageMember.member_id == ctx.project_id)
            return [member_dict(r) for r in await s.scalars(stmt)]

    async def get(self, ctx: AuthContext, image_id: str, member_id: str) -> dict[str, Any]:
        async with self.db.session() as s:
            image = await self.images.load(s, ctx, image_id)
            row = await s.get(ImageMember, (image_id, member_id))
            mine = ctx.is_admin or image.owner == ctx.project_id or member_id == ctx.project_id
            if row is None or not mine:
                raise errors.NotFound(f"Member {member_id} not found on image {image_id}.")
            return member_dict(row)

    async def set_status(self, ctx: AuthContext, image_id: str, member_id: str, status: str) -> dict[str, Any]:
        if status not in {m.value for m in MemberStatus}:
            raise errors.BadRequest(f"Invalid status: {status!r}; use pending, accepted or rejected.")
        async with self.db.session() as s:
            await self.images.load(s, ctx, image_id)
            row = await s.get(ImageMember, (image_id, member_id))
            if row is None:
                raise errors.NotFound(f"Member {member_id} not found on image {image_id}.")
            if member_id != ctx.project_id:
                raise errors.Forbidden("Only the member project itself can accept or reject a shared image.")
            row.status = status
            row.updated_at = utcnow()
            return member_dict(row)

    async def remove(self, ctx: AuthContext, image_id: str, member_id: str) -> None:
        async with self.db.session() as s:
            image = await self.images.load(s, ctx, image_id)
            row = await s.get(ImageMember, (image_id, member_id))
            if row is None:
                raise errors.NotFound(f"Member {member_id} not found on image {image_id}.")
            access.require_owner(ctx, image, "remove members of")
            await s.delete(row)
