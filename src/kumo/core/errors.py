"""One exception hierarchy for every service.

Services raise these from anywhere below the HTTP layer; each service's web
app renders them into its own historical error body (Keystone's
``{"error": {...}}``, Nova's ``{"itemNotFound": {...}}`` and so on), so the
status code and the message are decided once, where the problem is known.
"""

from __future__ import annotations


class KumoError(Exception):
    """Base of every error a client may see. ``status`` is the HTTP status."""

    status: int = 500
    title: str = "Internal Server Error"

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.message = message or self.default_message()
        self.headers = headers or {}
        super().__init__(self.message)

    def default_message(self) -> str:
        return "An unexpected error prevented the server from fulfilling your request."


class BadRequest(KumoError):
    status = 400
    title = "Bad Request"

    def default_message(self) -> str:
        return "The request could not be understood by the server."


class ValidationError(BadRequest):
    """Input that is well-formed JSON but has wrong fields, types or values."""


class Unauthorized(KumoError):
    status = 401
    title = "Unauthorized"

    def default_message(self) -> str:
        return "The request you have made requires authentication."


class Forbidden(KumoError):
    status = 403
    title = "Forbidden"

    def default_message(self) -> str:
        return "You are not authorized to perform the requested action."


class PolicyDenied(Forbidden):
    """The policy engine refused ``action`` for the caller."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__(f"You are not authorized to perform the requested action: {action}.")


class NotFound(KumoError):
    status = 404
    title = "Not Found"

    def default_message(self) -> str:
        return "The resource could not be found."


class MethodNotAllowed(KumoError):
    status = 405
    title = "Method Not Allowed"


class NotAcceptable(KumoError):
    status = 406
    title = "Not Acceptable"


class Conflict(KumoError):
    status = 409
    title = "Conflict"

    def default_message(self) -> str:
        return "The request could not be completed due to a conflict with the current state."


class Gone(KumoError):
    status = 410
    title = "Gone"


class PayloadTooLarge(KumoError):
    status = 413
    title = "Request Entity Too Large"

    def default_message(self) -> str:
        return "Request is too large."


class OverQuota(KumoError):
    """A quota would be exceeded. Status differs per service (Nova 403, Glance 413)."""

    status = 413
    title = "Over Quota"


class UnsupportedMediaType(KumoError):
    status = 415
    title = "Unsupported Media Type"


class ServiceUnavailable(KumoError):
    status = 503
    title = "Service Unavailable"


class NotImplementedYet(KumoError):
    status = 501
    title = "Not Implemented"

    def default_message(self) -> str:
        return "The action you have requested has not been implemented."
