"""``/v3/auth/*``: issue, validate, check and revoke tokens; what a token may reach."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kumo.core import errors
from kumo.core.auth import AuthContext
from kumo.core.web import auth_context, empty_response, json_response, parse_body
from kumo.identity import authn
from kumo.identity.api import schemas
from kumo.identity.api.common import MAX_BODY, authorize, base_url, service, with_links


def _user_ref(ref: schemas.UserRef | None) -> authn.UserRef | None:
    if ref is None:
        return None
    domain = ref.domain or schemas.DomainRef()
    if not ref.id and not (ref.name and (domain.id or domain.name)):
        raise errors.ValidationError("A user needs an id, or a name and a domain (id or name).")
    return authn.UserRef(id=ref.id, name=ref.name, domain_id=domain.id, domain_name=domain.name)


def _scope(scope: schemas.Scope | str | None) -> authn.ScopeRequest:
    if scope == "unscoped":
        return authn.ScopeRequest(unscoped=True)
    if scope is None or isinstance(scope, str):
        return authn.ScopeRequest()
    given = [x for x in (scope.project, scope.domain, scope.system) if x is not None]
    if len(given) > 1:
        raise errors.ValidationError("Specify only one of project, domain or system scope.")
    if scope.project is not None:
        p = scope.project
        if not p.id and not p.name:
            raise errors.ValidationError("A project scope needs an id or a name.")
        domain = p.domain or schemas.DomainRef()
        return authn.ScopeRequest(project_id=p.id, project_name=p.name, project_domain_id=domain.id,
                                  project_domain_name=domain.name)
    if scope.domain is not None:
        if not scope.domain.id and not scope.domain.name:
            raise errors.ValidationError("A domain scope needs an id or a name.")
        return authn.ScopeRequest(domain_id=scope.domain.id, domain_name=scope.domain.name)
    if scope.system is not None:
        return authn.ScopeRequest(system="all" if scope.system.all else None)
    return authn.ScopeRequest()


def auth_request(body: schemas.AuthBody) -> authn.AuthRequest:
    ident = body.auth.identity
    req = authn.AuthRequest(methods=tuple(ident.methods), scope=_scope(body.auth.scope))
    if "password" in ident.methods:
        if ident.password is None or ident.password.user.password is None:
            raise errors.ValidationError("'password' method needs 'password.user' with a password.")
        req = authn.AuthRequest(methods=req.methods, scope=req.scope, password_user=_user_ref(ident.password.user),
                                password=ident.password.user.password)
    elif "token" in ident.methods:
        if ident.token is None:
            raise errors.ValidationError("'token' method needs 'token.id'.")
        req = authn.AuthRequest(methods=req.methods, scope=req.scope, token=ident.token.id)
    elif "application_credential" in ident.methods:
        ac = ident.application_credential
        if ac is None or not (ac.id or (ac.name and ac.user)):
            raise errors.ValidationError("'application_credential' needs an id, or a name and a user.")
        req = authn.AuthRequest(methods=req.methods, scope=req.scope, app_cred_id=ac.id, app_cred_name=ac.name,
                                app_cred_user=_user_ref(ac.user), app_cred_secret=ac.secret)
    return req


async def _token_response(request: Request, ctx: AuthContext, status: int) -> Response:
    """The ``{"token": ...}`` body (cached per token), with ``X-Subject-Token``."""
    body = await service(request).token_json(ctx, "nocatalog" not in request.query_params)
    return Response(body, status_code=status, media_type="application/json",
                    headers={"X-Subject-Token": ctx.token})


async def issue_token(request: Request) -> Response:
    body = await parse_body(request, schemas.AuthBody, MAX_BODY)
    _, ctx = await service(request).issue(auth_request(body))
    return await _token_response(request, ctx, 201)


async def _subject(request: Request, action: str) -> AuthContext:
    caller = await auth_context(request)
    subject_token = request.headers.get("x-subject-token")
    if not subject_token:
        raise errors.NotFound("Could not find token: X-Subject-Token header is missing.")
    if subject_token == caller.token:
        subject = caller
    else:
        subject = await service(request).validate(subject_token)
    await authorize(request, action, {"token": {"user_id": subject.user_id}})
    return subject


async def validate_token(request: Request) -> Response:
    subject = await _subject(request, "identity:validate_token")
    return await _token_response(request, subject, 200)


async def check_token(request: Request) -> Response:
    subject = await _subject(request, "identity:check_token")
    return empty_response(200, headers={"X-Subject-Token": subject.token})


async def revoke_token(request: Request) -> Response:
    subject = await _subject(request, "identity:revoke_token")
    await service(request).auth.revoke(subject.token)
    return empty_response(204)


async def get_catalog(request: Request) -> Response:
    ctx = await authorize(request, "identity:get_auth_catalog")
    if not (ctx.project_id or ctx.domain_id or ctx.system_scope):
        raise errors.Forbidden("A scoped token is required to see the catalog.")  # Keystone: 403 on unscoped
    catalog = await service(request).catalog_for(ctx)
    return json_response({"catalog": catalog, "links": {"self": f"{base_url(request)}/v3/auth/catalog",
                                                        "previous": None, "next": None}})


async def get_projects(request: Request) -> Response:
    ctx = await authorize(request, "identity:get_auth_projects")
    projects = await service(request).projects_for_user(ctx.user_id)
    return json_response({"projects": [with_links(request, "projects", p) for p in projects],
                          "links": {"self": f"{base_url(request)}/v3/auth/projects", "previous": None, "next": None}})


async def get_domains(request: Request) -> Response:
    ctx = await authorize(request, "identity:get_auth_domains")
    domains = await service(request).domains_for_user(ctx.user_id)
    return json_response({"domains": [with_links(request, "domains", d) for d in domains],
                          "links": {"self": f"{base_url(request)}/v3/auth/domains", "previous": None, "next": None}})


async def get_system(request: Request) -> Response:
    ctx = await authorize(request, "identity:get_auth_system")
    has_system = await service(request).has_system_role(ctx.user_id)
    return json_response({"system": [{"all": True}] if has_system else [],
                          "links": {"self": f"{base_url(request)}/v3/auth/system", "previous": None, "next": None}})


routes = [
    Route("/v3/auth/tokens", issue_token, methods=["POST"]),
    Route("/v3/auth/tokens", check_token, methods=["HEAD"]),
    Route("/v3/auth/tokens", validate_token, methods=["GET"]),
    Route("/v3/auth/tokens", revoke_token, methods=["DELETE"]),
    Route("/v3/auth/catalog", get_catalog, methods=["GET"]),
    Route("/v3/auth/projects", get_projects, methods=["GET"]),
    Route("/v3/auth/domains", get_domains, methods=["GET"]),
    Route("/v3/auth/system", get_system, methods=["GET"]),
]
