"""The web portal: static pages at ``/`` that use the public API like any other client.

The files are served from the package with a strict Content-Security-Policy: scripts,
styles and API calls from this origin only, plus the configured issuer for the login
(its token endpoint is called from the page). No third-party origin is ever loaded.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from gridgate.gateway.exceptions import PortalFileNotFoundError

router = APIRouter(include_in_schema=False)
PORTAL_DIR = Path(__file__).resolve().parent.parent / "portal"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def security_headers(issuer: str) -> dict[str, str]:
    """What the browser may load and send: this origin, and the issuer for the login."""
    issuer_origin = _origin(issuer)
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {issuer_origin}",
            f"form-action 'self' {issuer_origin}",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # The pages change with each release and hold no user data: revalidate each time.
        "Cache-Control": "no-cache",
    }


def _file(request: Request, name: str) -> Response:
    path = (PORTAL_DIR / name).resolve()
    if not path.is_relative_to(PORTAL_DIR) or not path.is_file() or path.suffix not in MEDIA_TYPES:
        raise PortalFileNotFoundError(f"The portal has no file {name!r}.")
    issuer = request.app.state.context.settings.oidc_issuer
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=security_headers(issuer))


@router.get("/")
async def portal_page(request: Request) -> Response:
    """The portal's single page."""
    return _file(request, "index.html")


@router.get("/portal/config.json")
async def portal_config(request: Request) -> Response:
    """Where the portal logs in: the gateway's issuer and the portal's client."""
    settings = request.app.state.context.settings
    body = {
        "issuer": settings.oidc_issuer,
        "clientId": settings.portal_client_id,
        "resource": settings.portal_resource,
    }
    return JSONResponse(body, headers=security_headers(settings.oidc_issuer))


@router.get("/portal/{name:path}")
async def portal_file(request: Request, name: str) -> Response:
    """The portal's scripts and styles."""
    return _file(request, name)
