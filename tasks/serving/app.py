"""The HTTP application: ``POST /predict``, ``POST /generate``, ``GET /model``, ``GET /health``.

Safe by default: a request body over ``max_body_bytes`` answers 413 before it is read whole, a
batch over ``max_rows`` rows 413, a body that is not JSON 400, a bad row or setting 422 naming it
(:mod:`tasks.serving.rows`), a missing or wrong bearer token 401 when a token is set. Every error
is ``{"detail": "<reason>"}``; none of them reaches the model, and the server keeps answering.
"""
from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tasks.serving import rows as checks
from tasks.serving.rows import RequestError
from tasks.serving.slot import ModelSlot


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 2 * 1024 * 1024
    max_rows: int = 1024
    token: str | None = None  # the bearer token every request but /health must carry; None: no token


async def _json_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestError(413, f"the body is {declared} bytes; at most {limit} (--max-body-bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():  # a body without a length is counted as it arrives
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over {limit} bytes (--max-body-bytes)")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (UnicodeDecodeError, ValueError) as error:
        raise RequestError(400, f"the body is not JSON: {error}") from None


def _check_token(request: Request, token: str | None) -> None:
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestError(401, "missing or wrong bearer token (Authorization: Bearer <token>)")


def _served(slot: ModelSlot):
    if slot.current is None:
        raise RequestError(503, "no model loaded yet")
    return slot.current


def create_app(slot: ModelSlot, limits: Limits) -> FastAPI:
    """The application over ``slot`` (its current version answers each request)."""
    app = FastAPI(title="rnnflow", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(RequestError)
    async def refused(request: Request, error: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse({"detail": error.reason}, status_code=error.status, headers=headers)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        version = slot.current
        return {"status": "ok" if version else "loading", "version": version.info.get("version") if version else None}

    @app.get("/model")
    async def model(request: Request) -> dict[str, Any]:
        _check_token(request, limits.token)
        return _served(slot).describe()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        _check_token(request, limits.token)
        rows = checks.request_rows(await _json_body(request, limits.max_body_bytes), limits.max_rows)
        version = _served(slot)  # read once: a swap during this request does not change its model
        answers = await run_in_threadpool(version.predict, rows)
        return {"model": version.info.get("name"), "version": version.info.get("version"), "predictions": answers}

    @app.post("/generate")
    async def generate(request: Request) -> dict[str, Any]:
        _check_token(request, limits.token)
        settings = checks.generate_settings(await _json_body(request, limits.max_body_bytes))
        version = _served(slot)
        answer = await run_in_threadpool(version.generate, settings)
        return {"model": version.info.get("name"), "version": version.info.get("version"), **answer}

    return app
