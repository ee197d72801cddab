"""The one error family services raise; adapters map it to HTTP, pages or exit codes.

AamiError
├── BadRequest      400  the request cannot be understood
├── Unauthorized    401  no or wrong credentials
├── Forbidden       403  credentials that may not do this
├── NotFound        404  no such object
├── Conflict        409  the object clashes with the current state
├── Invalid         422  the object is understood but not acceptable
└── Unavailable     503  a component AAMI depends on does not answer
"""

from __future__ import annotations

__all__ = [
    "AamiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "Unauthorized",
    "Unavailable",
]


class AamiError(Exception):
    """Base of every error a service raises on purpose."""

    status_code = 500
    kind = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(AamiError):
    status_code = 400
    kind = "bad_request"


class Unauthorized(AamiError):
    status_code = 401
    kind = "unauthorized"


class Forbidden(AamiError):
    status_code = 403
    kind = "forbidden"


class NotFound(AamiError):
    status_code = 404
    kind = "not_found"

    @classmethod
    def of(cls, entity: str, ref: str) -> NotFound:
        """Build the usual message for a missing object."""
        return cls(f"{entity} {ref!r} does not exist")


class Conflict(AamiError):
    status_code = 409
    kind = "conflict"


class Invalid(AamiError):
    status_code = 422
    kind = "invalid"


class Unavailable(AamiError):
    status_code = 503
    kind = "unavailable"
