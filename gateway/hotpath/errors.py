"""Errors the gateway answers with, in OpenAI's error JSON shape."""

from __future__ import annotations

import orjson


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )


def invalid_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def unauthorized(message: str, code: str = "invalid_api_key") -> GatewayError:
    return GatewayError(401, message, type="invalid_request_error", code=code)


def not_found(message: str, *, code: str, param: str | None = None) -> GatewayError:
    return GatewayError(404, message, type="invalid_request_error", code=code, param=param)


def upstream_unreachable(provider: str) -> GatewayError:
    return GatewayError(502, f"The upstream provider '{provider}' could not be reached.", type="api_error", code="upstream_unreachable")


def upstream_timeout(provider: str) -> GatewayError:
    return GatewayError(504, f"The upstream provider '{provider}' did not answer in time.", type="api_error", code="upstream_timeout")
