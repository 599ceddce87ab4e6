"""Braze-shaped error responses raised from handlers."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """Ends a request with ``status`` and ``body``; raised anywhere inside a handler."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def catalog_error(
    status: int,
    error_id: str,
    message: str,
    parameters: list[str] | None = None,
    values: list[Any] | None = None,
) -> ApiError:
    """The catalog endpoints' documented error body."""
    return ApiError(
        status,
        {
            "errors": [
                {
                    "id": error_id,
                    "message": message,
                    "parameters": parameters or [],
                    "parameter_values": values or [],
                }
            ],
            "message": "Invalid Request",
        },
    )


def message_error(message: str, status: int = 400) -> ApiError:
    """Templates, Content Blocks and preference centers answer with a plain message."""
    return ApiError(status, {"message": message})


def scim_error(status: int, detail: str) -> ApiError:
    return ApiError(
        status,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": detail,
            "status": status,
        },
    )
