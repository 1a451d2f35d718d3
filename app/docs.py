"""/docs without internet: Swagger UI's files come from the swagger-ui-bundle-v2 package, served here.

FastAPI's default /docs page loads Swagger UI from a CDN; this one serves the same files from the
installed package. /openapi.json gains the request models of app/schemas.py (read from forms,
queries or JSON by app/params.py), with every bound filled in from the app's Settings.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic.json_schema import models_json_schema

from .fields import fill_limits
from .schemas import REQUEST_MODELS
from .settings import Settings

try:  # the swagger-ui-bundle-v2 distribution installs the module swagger_ui_bundle
    from swagger_ui_bundle import swagger_ui_path

    SWAGGER_DIR: Path | None = Path(swagger_ui_path)
except ImportError:  # pragma: no cover - the dependency is in pyproject.toml
    SWAGGER_DIR = None


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs-assets/swagger-ui.css">
<link rel="icon" href="/docs-assets/favicon-32x32.png">
</head><body data-openapi="{openapi}"><div id="swagger-ui"></div>
<script src="/docs-assets/swagger-ui-bundle.js"></script><script src="/static/docs.js"></script>
</body></html>
"""


def openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of app, with the request models and the bounds of `settings`."""
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                         description=app.description, routes=app.routes)
    _, defs = models_json_schema([(m, "validation") for m in REQUEST_MODELS],
                                 ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
    fill_limits(schema, settings)
    return schema


def install_docs(app: FastAPI, settings: Settings) -> None:
    """Serve /docs from local Swagger UI files and extend /openapi.json with the request models."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = openapi_schema(app, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if SWAGGER_DIR is None:
        return
    app.mount("/docs-assets", StaticFiles(directory=SWAGGER_DIR), name="docs-assets")

    page = DOCS_PAGE.format(title=html.escape(f"{app.title} API"), openapi=app.openapi_url or "/openapi.json")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI, served locally, started by /static/docs.js (no inline script: strict CSP)."""
        return HTMLResponse(page)
