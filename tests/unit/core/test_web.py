"""Web plumbing: request ids, error rendering, body limits, routing, auth."""

from __future__ import annotations

import datetime as dt

import httpx
import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core import errors
from kumo.core.auth import AuthContext, CachingValidator
from kumo.core.web import JSONResponse, auth_context, json_response, parse_body, root_app, service_app


class Item(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: pydantic.StrictStr
    size: pydantic.StrictInt = 0


class StaticValidator:
    """A validator that knows one token; counts calls to show caching."""

    def __init__(self) -> None:
        self.calls = 0

    async def validate(self, token: str) -> AuthContext:
        self.calls += 1
        if token != "good":
            raise errors.NotFound("no such token")
        return AuthContext(token=token, user_id="u1", user_name="u", user_domain_id="default",
                           user_domain_name="Default", methods=("password",), roles=("member",),
                           expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))


def render(err: errors.KumoError, request: Request) -> Response:
    return JSONResponse({"fault": {"code": err.status, "message": err.message}}, status_code=err.status,
                        headers=err.headers)


async def create(request: Request) -> Response:
    item = await parse_body(request, Item, max_size=1024)
    ctx = await auth_context(request)
    return json_response({"item": item.model_dump(), "by": ctx.user_id}, status=201)


async def crash(request: Request) -> Response:
    raise RuntimeError("secret internal detail")


async def conflict(request: Request) -> Response:
    raise errors.Conflict("already there")


def make_client(validator: object) -> httpx.AsyncClient:
    routes = [Route("/items", create, methods=["POST"]), Route("/crash", crash), Route("/conflict", conflict),
              Route("/public", conflict)]
    app = service_app(routes, renderer=render, validator=validator,  # type: ignore[arg-type]
                      public=lambda method, path: path == "/public")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=root_app([("/svc", app)]), raise_app_exceptions=False),
                             base_url="http://t")


async def test_request_id_and_errors_in_service_format() -> None:
    async with make_client(StaticValidator()) as c:
        ids = set()
        for path in ("/svc/conflict", "/svc/nowhere", "/nothing", "/svc/public"):
            r = await c.get(path, headers={"X-Auth-Token": "good"})
            ids.add(r.headers["x-openstack-request-id"])
        assert len(ids) == 4 and all(i.startswith("req-") for i in ids)
        r = await c.get("/svc/conflict", headers={"X-Auth-Token": "good"})
        assert r.status_code == 409 and r.json() == {"fault": {"code": 409, "message": "already there"}}
        r = await c.get("/svc/nowhere", headers={"X-Auth-Token": "good"})
        assert r.status_code == 404 and "fault" in r.json()
        r = await c.delete("/svc/items", headers={"X-Auth-Token": "good"})
        assert r.status_code == 405 and "fault" in r.json()


async def test_crash_is_a_500_without_traceback() -> None:
    async with make_client(StaticValidator()) as c:
        r = await c.get("/svc/crash", headers={"X-Auth-Token": "good"})
        assert r.status_code == 500
        assert "secret internal detail" not in r.text and "Traceback" not in r.text
        assert (await c.get("/svc/conflict", headers={"X-Auth-Token": "good"})).status_code == 409


async def test_auth_required_except_public() -> None:
    async with make_client(StaticValidator()) as c:
        assert (await c.get("/svc/conflict")).status_code == 401
        assert (await c.get("/svc/conflict", headers={"X-Auth-Token": "bad"})).status_code == 401
        assert (await c.get("/svc/public")).status_code == 409


async def test_body_parsing_errors() -> None:
    h = {"X-Auth-Token": "good", "Content-Type": "application/json"}
    async with make_client(StaticValidator()) as c:
        r = await c.post("/svc/items", json={"name": "a", "size": 2}, headers=h)
        assert r.status_code == 201 and r.json() == {"item": {"name": "a", "size": 2}, "by": "u1"}
        for body, status, text in ((b"{nope", 400, "not valid JSON"), (b"", 400, "empty"),
                                   (b'{"name": 1}', 400, "'name'"), (b'{"size": 1}', 400, "required"),
                                   (b'{"name": "a", "x": 1}', 400, "'x' was unexpected"),
                                   (b'{"name": "' + b"a" * 2000 + b'"}', 413, "")):
            r = await c.post("/svc/items", content=body, headers=h)
            assert r.status_code == status, body
            assert text in r.json()["fault"]["message"]

        async def chunks():  # no Content-Length: the cap still applies while streaming
            for _ in range(10):
                yield b" " * 500

        r = await c.post("/svc/items", content=chunks(), headers=h)
        assert r.status_code == 413


async def test_caching_validator() -> None:
    inner = StaticValidator()
    cache = CachingValidator(inner, ttl=60)
    for _ in range(5):
        await cache.validate("good")
    assert inner.calls == 1 and cache.hits == 4
    cache.invalidate()
    await cache.validate("good")
    assert inner.calls == 2
    try:
        await cache.validate("bad")
    except errors.NotFound:
        pass
    else:
        raise AssertionError("bad token validated")
