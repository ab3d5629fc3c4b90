"""API docs without a CDN: the OpenAPI document, Swagger UI at /docs, ReDoc at /redoc.

The Swagger UI and ReDoc bundles come from the `fastapi-offline` package (its `static/` directory),
so the pages work in air-gapped clusters. The pages are static shells: no inline script (a strict
Content-Security-Policy can forbid inline code) and nothing about the API in them. `docs.js` fetches
`/openapi.json` and hands the document to the UI; it is the only route that describes the API, and
the one a read-token dependency attaches to (`create_router(dependencies=...)`).

A browser cannot send an `Authorization` header on navigation, so a protected monitor's docs are
opened as `/docs#token=<token>`: the fragment never leaves the browser (not sent, not logged, not in
a Referer). `docs.js` moves the token into the tab's sessionStorage, removes it from the address bar,
sends it as a bearer token on the OpenAPI fetch and on Swagger's "Try it out" requests, and shows
how to pass one when the document answers 401.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, Request, params
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
# Served from ASSETS_DIR by name; nothing else is (no path from the request reaches the file system).
ASSET_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
ASSETS_PATH = "/docs/assets"
_CACHE = {"Cache-Control": "public, max-age=3600"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{assets}/favicon.png">
{stylesheet}
</head>
<body>
<noscript>The API reference needs JavaScript; the OpenAPI document is at {openapi}.</noscript>
<p id="docs-message" hidden></p>
<div id="docs-ui"></div>
<script src="{assets}/{bundle}"></script>
<script src="{assets}/docs.js" data-openapi-url="{openapi}" data-ui="{ui}"></script>
</body>
</html>
"""

# Loads the OpenAPI document (with the token from the fragment, if any) and starts the UI.
_DOCS_JS = """\
"use strict";
(function () {
  var script = document.currentScript;
  var openapiUrl = script.dataset.openapiUrl;
  var ui = script.dataset.ui;
  var KEY = "drift-monitor-docs-token";
  var params = new URLSearchParams(window.location.hash.slice(1));
  if (params.has("token")) {
    sessionStorage.setItem(KEY, params.get("token"));
    params.delete("token");
    var rest = params.toString();
    var here = window.location.pathname + window.location.search;
    history.replaceState(null, "", here + (rest ? "#" + rest : ""));
  }
  var token = sessionStorage.getItem(KEY);
  function say(text) {
    var p = document.getElementById("docs-message");
    p.textContent = text;
    p.hidden = false;
  }
  var headers = token ? {Authorization: "Bearer " + token} : {};
  fetch(openapiUrl, {headers: headers, credentials: "omit"}).then(function (response) {
    if (response.status === 401) {
      sessionStorage.removeItem(KEY);
      say("This monitor needs a token to show its API description: open this page as "
          + window.location.pathname + "#token=<your token> (the part after # never leaves the browser).");
      return null;
    }
    if (!response.ok) {
      say("The API description could not be loaded: HTTP " + response.status + " from " + openapiUrl + ".");
      return null;
    }
    return response.json();
  }).then(function (spec) {
    if (!spec) { return; }
    if (!spec.servers) {  // "Try it out" goes to the monitor serving this page, under its root path
      var base = new URL(openapiUrl, window.location.href);
      spec.servers = [{url: base.href.slice(0, base.href.lastIndexOf("/")) || "/"}];
    }
    if (ui === "redoc") {
      Redoc.init(spec, {hideDownloadButton: false}, document.getElementById("docs-ui"));
      return;
    }
    SwaggerUIBundle({
      spec: spec,
      dom_id: "#docs-ui",
      deepLinking: true,
      layout: "BaseLayout",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
      requestInterceptor: function (request) {
        if (token && !request.headers.Authorization) {
          request.headers.Authorization = "Bearer " + token;
        }
        return request;
      }
    });
  }).catch(function (error) {
    say("The API reference failed to start: " + error);
  });
})();
"""


def _page(request: Request, ui: str) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    assets = f"{root}{ASSETS_PATH}"
    title = html.escape(f"{request.app.title} - {'ReDoc' if ui == 'redoc' else 'Swagger UI'}")
    stylesheet = "" if ui == "redoc" else f'<link rel="stylesheet" href="{assets}/swagger-ui.css">'
    bundle = "redoc.standalone.js" if ui == "redoc" else "swagger-ui-bundle.js"
    body = _PAGE.format(
        title=title,
        assets=html.escape(assets),
        stylesheet=stylesheet,
        openapi=html.escape(f"{root}/openapi.json"),
        bundle=bundle,
        ui=ui,
    )
    return HTMLResponse(body)


def create_router(dependencies: Sequence[params.Depends] = ()) -> APIRouter:
    """The docs routes; `dependencies` (e.g. a read-token check) guard `/openapi.json`.

    The pages and assets stay public: they contain nothing about this API, and a browser could not
    authenticate the navigation anyway (see the module docstring for how the token travels).
    """
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json", dependencies=list(dependencies))
    async def openapi(request: Request) -> JSONResponse:
        schema: dict[str, Any] = request.app.openapi()
        return JSONResponse(schema)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        return _page(request, "swagger")

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        return _page(request, "redoc")

    @router.get(ASSETS_PATH + "/docs.js")
    async def docs_js() -> Response:
        return Response(_DOCS_JS, media_type="text/javascript", headers=_CACHE)

    @router.get(ASSETS_PATH + "/{name}")
    async def asset(name: str) -> Response:
        media_type = ASSET_TYPES.get(name)
        if media_type is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return FileResponse(ASSETS_DIR / name, media_type=media_type, headers=_CACHE)

    return router
