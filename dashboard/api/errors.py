"""TMF630 error responses: every 4xx and 5xx of the ``/tmf-api`` paths is one JSON object with
``code``, ``reason``, ``message`` and ``status``, so that a client handles every failure the same
way, an unexpected error included (a 500, logged with its traceback). A value PostgreSQL refuses
(``asyncpg.DataError``) is the client's mistake: 400. Paths outside ``/tmf-api`` keep FastAPI's own
error bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)
T = TypeVar("T")

TMF_PREFIX = "/tmf-api/"

_CODES = {
    400: "invalidRequest",
    404: "notFound",
    405: "methodNotAllowed",
    409: "conflict",
    415: "unsupportedMediaType",
    422: "unprocessableEntity",
    500: "internalError",
    503: "unavailable",
}


class TmfError(BaseModel):
    """TMF630 ``Error``: what went wrong, for a program (``code``) and for a person (``message``)."""

    model_config = ConfigDict(populate_by_name=True)

    code: str = Field(description="Application error code, e.g. notFound, invalidQuery, invalidBody.")
    reason: str = Field(description="Short explanation of the error, e.g. Not Found.")
    message: str = Field(description="What exactly was wrong with the request, and how to correct it.")
    status: str = Field(description="The HTTP status code, as a string.")
    type_: str = Field(default="Error", alias="@type", description="TMF class name: Error.")


class ApiError(HTTPException):
    """A request the API refuses, with the TMF630 error body to answer with.

    An ``HTTPException``: an app without :func:`install` still answers with the right status.
    """

    def __init__(self, status: int, message: str, code: str | None = None):
        self.error = TmfError(
            code=code or _CODES.get(status, "error"),
            reason=_reason(status),
            message=message,
            status=str(status),
        )
        super().__init__(status, self.error.model_dump(by_alias=True))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def published(request: Awaitable[T]) -> T:
    """Await a publish for a request; 503 when the event bus does not take it."""
    try:
        return await request
    except KafkaError as exc:
        raise ApiError(503, f"the event bus did not take the request: {exc}") from None


def not_found(kind: str, resource_id: str) -> ApiError:
    """404 for an id the API does not know."""
    return ApiError(404, f"no {kind} with id {resource_id!r}")


def bad_request(message: str, code: str = "invalidRequest") -> ApiError:
    """400 for a request the API cannot act on."""
    return ApiError(400, message, code)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": TmfError, "description": "Invalid filter, pagination, date or body."},
    404: {"model": TmfError, "description": "No resource with this id."},
    503: {"model": TmfError, "description": "The event bus did not take the request."},
}
"""The error responses every TMF route documents in the OpenAPI description."""


def validation_message(errors: Sequence[Any], limit: int = 5) -> tuple[str, str]:
    """One readable line (and an error code) from pydantic's validation errors of a request: which
    parameter or body field is wrong and why."""
    parts: list[str] = []
    code = "invalidRequest"
    for error in errors[:limit]:
        loc = [str(p) for p in error.get("loc", ())]
        where, path = (loc[0], loc[1:]) if loc else ("request", [])
        if where == "body":
            code = "invalidBody"
            if error.get("type") == "json_invalid":
                parts.append("body: not valid JSON")
                continue
            field = ".".join(path)
            if not field and error.get("type") in ("model_attributes_type", "dict_type"):
                parts.append("body: expected a JSON object, sent as application/json")
                continue
            parts.append(f"body{' field ' + field if field else ''}: {_readable(error)}")
        else:
            if code == "invalidRequest":
                code = "invalidQuery" if where == "query" else "invalidParameter"
            name = ".".join(path) or where
            value = error.get("input")
            shown = f" (got {value!r})" if isinstance(value, str) else ""
            parts.append(f"{where} parameter {name!r}: {_readable(error)}{shown}")
    if len(errors) > limit:
        parts.append(f"and {len(errors) - limit} more")
    return "; ".join(parts) or "invalid request", code


def _readable(error: Any) -> str:
    """pydantic's message, without the prefix it puts before a validator's own words."""
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def _tmf(request: Request) -> bool:
    return request.url.path.startswith(TMF_PREFIX)


def _error_response(error: TmfError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error.model_dump(by_alias=True), status_code=int(error.status), headers=dict(headers or {})
    )


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error_response(exc.error, exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _tmf(request):
        return await request_validation_exception_handler(request, exc)
    message, code = validation_message(exc.errors())
    return _error_response(ApiError(400, message, code).error)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _tmf(request):
        return await http_exception_handler(request, exc)
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no resource at {request.url.path}"
    return _error_response(ApiError(exc.status_code, message).error, exc.headers)


async def _on_data_error(request: Request, exc: Exception) -> Response:
    """A value PostgreSQL cannot take (out of its range, bytes its text cannot hold): 400."""
    assert isinstance(exc, asyncpg.DataError)
    message = f"a value of the request cannot be used: {str(exc).splitlines()[0] if str(exc) else 'invalid'}"
    if not _tmf(request):
        return JSONResponse({"detail": message}, status_code=400)
    return _error_response(ApiError(400, message).error)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    """Any other error: logged with its traceback, and answered 500 (a TMF630 body on the TMF
    paths) without its details, which are for the operator, not the client."""
    log.error(
        "request failed", method=request.method, path=request.url.path, error=type(exc).__name__, exc_info=exc
    )
    if not _tmf(request):
        return PlainTextResponse("Internal Server Error", status_code=500)
    return _error_response(
        ApiError(500, "the server failed to answer this request; the error is logged").error
    )


def install(app: FastAPI) -> None:
    """Answer errors of the ``/tmf-api`` paths with TMF630 error bodies: the API's own refusals,
    invalid parameters and bodies and values PostgreSQL refuses (400), unknown paths or methods,
    and any unexpected error (500)."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(asyncpg.DataError, _on_data_error)
    app.add_exception_handler(Exception, _on_unexpected)
