"""A small real server whose /openapi.json needs a bearer token, for the docs browser test.

The monitor has no read token yet (the security issue adds `server.read_token`); this app attaches
a token check to `api.docs.create_router(dependencies=...)` exactly as the monitor will, so the
browser test exercises the `/docs#token=...` path against a real uvicorn process:

    DOCS_TEST_TOKEN=secret python -m uvicorn tests.support.docs_token_app:create --factory --port N
"""

from __future__ import annotations

import hmac
import os

from fastapi import Depends, FastAPI, HTTPException, Request

from monitor_service.api.docs import create_router

OPERATION_SUMMARY = "List the things"


def create() -> FastAPI:
    token = os.environ["DOCS_TEST_TOKEN"]

    async def require_token(request: Request) -> None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="Docs token test", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/v1/things", summary=OPERATION_SUMMARY, dependencies=[Depends(require_token)])
    async def things() -> list[str]:
        return ["a"]

    app.include_router(create_router(dependencies=[Depends(require_token)]))
    return app
