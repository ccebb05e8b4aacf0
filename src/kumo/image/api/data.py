"""Image data: ``/file`` upload and download (with Range), ``/stage`` and ``/import``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from kumo.core import errors
from kumo.core.web import empty_response, json_response, read_json
from kumo.image.api.common import authorize, data
from kumo.image.store.base import DataMissing

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _require_octet_stream(request: Request) -> None:
    content_type = request.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
    if content_type != "application/octet-stream":
        raise errors.UnsupportedMediaType(f"Unsupported Content-Type {content_type!r}: image data must be sent "
                                          f"as application/octet-stream.")


async def _receive(request: Request, step: str) -> Response:
    """Stream the body into ``ImageData.upload`` or ``.stage``; a cut-off body is a 400."""
    _require_octet_stream(request)
    ctx = await authorize(request, "image:upload_image")
    receive = getattr(data(request), step)
    try:
        await receive(ctx, request.path_params["image_id"], request.stream())
    except ClientDisconnect as exc:
        raise errors.BadRequest("The upload was cut off before all data arrived.") from exc
    return empty_response(204)


async def upload(request: Request) -> Response:
    return await _receive(request, "upload")


async def stage(request: Request) -> Response:
    return await _receive(request, "stage")


async def import_image(request: Request) -> Response:
    body = await read_json(request, 65536)
    method = body.get("method", {}).get("name") if isinstance(body, dict) and isinstance(body.get("method"), dict) \
        else None
    if not isinstance(method, str):
        raise errors.BadRequest("The request body must name an import method: {\"method\": {\"name\": ...}}.")
    ctx = await authorize(request, "image:import_image")
    await data(request).start_import(ctx, request.path_params["image_id"], method)
    return empty_response(202)


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """One ``bytes=a-b`` range -> (start, length); 416 when it cannot be served."""
    match = RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise errors.KumoError("Invalid Range header.")
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:
        start = max(size - int(last), 0)
        end = size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(size)
    return start, end - start + 1


class RangeNotSatisfiable(errors.KumoError):
    status = 416
    title = "Requested Range Not Satisfiable"

    def __init__(self, size: int) -> None:
        super().__init__("Requested range not satisfiable.", headers={"Content-Range": f"bytes */{size}"})


async def download(request: Request) -> Response:
    ctx = await authorize(request, "image:download_image")
    image = await data(request).open_download(ctx, request.path_params["image_id"])
    if image is None:
        return empty_response(204)
    size = int(image["size"] or 0)
    headers = {"Content-MD5": image["checksum"] or "", "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream"}
    range_header = request.headers.get("range")
    if range_header and size:
        try:
            start, length = _parse_range(range_header, size)
        except RangeNotSatisfiable:
            raise
        except errors.KumoError:
            start, length = 0, size  # an unparseable Range is ignored, as HTTP says
        else:
            body = await _opened(data(request).read(image["location"], start, length))
            if body is None:
                return empty_response(204)
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
            headers["Content-Length"] = str(length)
            return StreamingResponse(body, status_code=206, headers=headers)
    body = await _opened(data(request).read(image["location"]))
    if body is None:
        return empty_response(204)
    headers["Content-Length"] = str(size)
    return StreamingResponse(body, headers=headers)


async def _opened(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes] | None:
    """``stream`` with its first block already read, or None when the store has lost the data.

    Reading ahead before the response starts turns a missing file into Glance's
    204 instead of a 200 whose body breaks off.
    """
    try:
        first = await anext(stream)
    except DataMissing:
        return None
    except StopAsyncIteration:
        first = b""

    async def chain() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for block in stream:
                yield block
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    return chain()


async def import_info(request: Request) -> Response:
    await authorize(request, "image:get_images")
    return json_response({"import-methods": {"description": "Import methods available.", "type": "array",
                                             "value": ["glance-direct"]}})


async def stores_info(request: Request) -> Response:
    await authorize(request, "image:get_images")
    store = data(request).store
    return json_response({"stores": [{"id": store.name, "description": store.description, "default": True}]})


routes = [
    Route("/v2/images/{image_id}/file", upload, methods=["PUT"]),
    Route("/v2/images/{image_id}/file", download, methods=["GET"]),
    Route("/v2/images/{image_id}/stage", stage, methods=["PUT"]),
    Route("/v2/images/{image_id}/import", import_image, methods=["POST"]),
    Route("/v2/info/import", import_info, methods=["GET"]),
    Route("/v2/info/stores", stores_info, methods=["GET"]),
]
