"""The docs routes in process: pages without any CDN, assets from the package, a guardable OpenAPI route.

The pages rendered in a real browser with the network cut off: tests/e2e/test_docs_offline.py.
"""

from __future__ import annotations

import re

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from monitor_service.api.docs import ASSET_TYPES, ASSETS_DIR, create_router


def test_docs_pages_reference_only_local_assets(client: TestClient) -> None:
    for path, bundle in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert not re.search(r"(https?:)?//", page.text), "the page must load nothing from another host"
        assert f'src="/docs/assets/{bundle}"' in page.text
        assert "<script>" not in page.text, "no inline script (a strict CSP may forbid it)"
        for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert client.get(src).status_code == 200, src


def test_docs_assets_are_the_packaged_files(client: TestClient) -> None:
    for name, media_type in ASSET_TYPES.items():
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(media_type)
        assert response.content == (ASSETS_DIR / name).read_bytes()
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text[:5000]


def test_docs_assets_refuse_other_names(client: TestClient) -> None:
    for name in ("core.py", "..%2Fcore.py", "%2E%2E%2F__init__.py", "swagger-ui-bundle.js.map"):
        assert client.get(f"/docs/assets/{name}").status_code == 404, name


def test_docs_openapi_lists_operations_but_not_the_docs_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["paths"]["/v1/models/{model}/rows"]["post"]["summary"] == "Send inference rows"
    assert not any(path.startswith(("/docs", "/redoc", "/openapi")) for path in schema["paths"])


def test_docs_router_guards_openapi_with_a_dependency_and_keeps_pages_public() -> None:
    async def require_token(request: Request) -> None:
        if request.headers.get("authorization") != "Bearer s3cret":
            raise HTTPException(401, "missing or wrong bearer token")

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router(dependencies=[Depends(require_token)]))
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/docs").status_code == 200
        assert client.get("/docs/assets/docs.js").status_code == 200


def test_docs_pages_follow_the_root_path() -> None:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(create_router())
    with TestClient(app, root_path="/monitor") as client:
        page = client.get("/docs").text
    assert 'src="/monitor/docs/assets/swagger-ui-bundle.js"' in page
    assert 'data-openapi-url="/monitor/openapi.json"' in page
