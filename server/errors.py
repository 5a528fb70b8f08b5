"""Server-side errors that know their HTTP/OCS status; services raise them, views render them."""

from rest_framework.exceptions import APIException


class APIError(APIException):
    status_code = 400
    default_detail = "Bad request"

    def __init__(self, message: str | None = None):
        super().__init__(detail=message or self.default_detail)


class BadRequest(APIError):
    status_code = 400


class Unauthorized(APIError):
    status_code = 401
    default_detail = "Unauthorized"


class Forbidden(APIError):
    status_code = 403
    default_detail = "Forbidden"


class NotFound(APIError):
    """Also the answer for "not yours": the two must look the same."""

    status_code = 404
    default_detail = "Not found"


class Conflict(APIError):
    status_code = 409
    default_detail = "Conflict"


class PreconditionFailed(APIError):
    status_code = 412
    default_detail = "Precondition failed"


class Locked(APIError):
    status_code = 423
    default_detail = "Locked"


class ServiceUnavailable(APIError):
    status_code = 503
    default_detail = "Service unavailable"
