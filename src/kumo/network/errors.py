"""Neutron's exceptions: each a :class:`kumo.core.errors.KumoError` with the ``type`` Neutron names it by.

Neutron renders every error as ``{"NeutronError": {"type": <class name>,
"message": ..., "detail": ""}}``; clients (openstacksdk, the CLI) show the
message and some code branches on the type, so both are Neutron's own
(neutron-lib's exception templates, word for word).
"""

from __future__ import annotations

from kumo.core import errors

#: Resource kind -> Neutron's NotFound message template.
NOT_FOUND = {
    "Network": "Network {} could not be found.",
    "Subnet": "Subnet {} could not be found.",
    "SubnetPool": "Subnet pool {} could not be found.",
    "Port": "Port {} could not be found.",
    "SecurityGroup": "Security group {} does not exist",
    "SecurityGroupRule": "Security group rule {} does not exist",
    "Router": "Router {} could not be found",
    "FloatingIP": "Floating IP {} could not be found",
    "Agent": "Agent {} could not be found.",
    "Tag": "Tag {} could not be found.",
}


class NeutronError(errors.KumoError):
    """Base: ``neutron_type`` is what the error body's ``type`` says."""

    neutron_type = "NeutronException"


class InvalidInput(NeutronError, errors.BadRequest):
    """Neutron's ``InvalidInput``: "Invalid input for operation: <detail>."."""

    neutron_type = "InvalidInput"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"Invalid input for operation: {detail}.")


class Invalid(NeutronError, errors.BadRequest):
    """An ``InvalidInput`` subclass whose message is its own template (no prefix): 400 with its own type."""

    def __init__(self, message: str, neutron_type: str) -> None:
        self.neutron_type = neutron_type
        super().__init__(message)


class BadRequest(NeutronError, errors.BadRequest):
    """The body or query cannot be understood (Neutron's webob ``HTTPBadRequest``)."""

    neutron_type = "HTTPBadRequest"


class BadResourceRequest(NeutronError, errors.BadRequest):
    """Neutron's ``BadRequest``: "Bad <resource> request: <message>."."""

    neutron_type = "BadRequest"

    def __init__(self, resource: str, message: str) -> None:
        super().__init__(f"Bad {resource} request: {message}.")


class NotFound(NeutronError, errors.NotFound):
    neutron_type = "NotFound"

    def __init__(self, kind: str, ident: str) -> None:
        self.neutron_type = f"{kind}NotFound"
        super().__init__(NOT_FOUND.get(kind, kind + " {} could not be found.").format(ident))


class Missing(NeutronError, errors.NotFound):
    """A 404 with its own type and message (RouterInterfaceNotFoundForSubnet ...)."""

    def __init__(self, message: str, neutron_type: str) -> None:
        self.neutron_type = neutron_type
        super().__init__(message)


class HTTPNotFound(NeutronError, errors.NotFound):
    """What a change to a resource the caller cannot even see answers (Neutron hides that it exists)."""

    neutron_type = "HTTPNotFound"

    def __init__(self) -> None:
        super().__init__("The resource could not be found.")


class Conflict(NeutronError, errors.Conflict):
    neutron_type = "Conflict"

    def __init__(self, message: str, neutron_type: str = "Conflict") -> None:
        self.neutron_type = neutron_type
        super().__init__(message)


class InUse(Conflict):
    """A resource others still use (NetworkInUse, SubnetInUse, SecurityGroupInUse ...)."""


class OverQuota(NeutronError, errors.Conflict):
    neutron_type = "OverQuota"

    def __init__(self, resources: list[str]) -> None:
        super().__init__(f"Quota exceeded for resources: {sorted(resources)!r}.")


class PolicyNotAuthorized(NeutronError, errors.Forbidden):
    """oslo.policy's "<rule> is disallowed by policy": ``rule:x``, or ``(rule:x and rule:x:attr)``."""

    neutron_type = "PolicyNotAuthorized"

    def __init__(self, rule: str) -> None:
        super().__init__(f"{rule} is disallowed by policy")
