"""The one exception family of aicy, rendered as OpenAI error bodies in one place (``aicy.http.errors``).

AicyError                      status, type, code, param, message
├── InvalidRequest             400 invalid_request_error
│   └── UnsupportedValue       400 code=unsupported_value
├── Unauthorized               401 invalid_api_key
├── PermissionDenied           403
├── NotFound                   404
│   └── ModelNotFound          404 code=model_not_found
├── PayloadTooLarge            413
├── RateLimited                429
├── ServerError                500 / 502 / 503
└── UpstreamError              502 upstream_error, keeping the upstream's code and message
"""

from __future__ import annotations

from typing import Any


class AicyError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.headers = headers or {}

    @property
    def retryable(self) -> bool:
        """A retry of the same request could succeed (busy, rate limited, the upstream failed)."""
        return self.status in (408, 409, 429) or self.status >= 500

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(AicyError):
    status = 400
    type = "invalid_request_error"


class UnsupportedValue(InvalidRequest):
    code = "unsupported_value"


class Unauthorized(AicyError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class PermissionDenied(AicyError):
    status = 403
    type = "invalid_request_error"
    code = "permission_denied"


class NotFound(AicyError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it. "
            "Call GET /v1/models for the models you can use.",
            param="model",
        )


class PayloadTooLarge(AicyError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class RateLimited(AicyError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class ServerError(AicyError):
    status = 500
    type = "server_error"


class UpstreamError(AicyError):
    """An error the upstream reported in its reply or mid-stream; its ``code`` and ``message`` are kept."""

    status = 502
    type = "upstream_error"
