"""The booking page: static files, no build step. The page talks to the same /api/v1 as everyone."""

from pathlib import Path

from aiohttp import web

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"

# Only our own scripts, styles and API: an injected <script> or a framing site gets nothing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_ROOT / "index.html", headers=PAGE_HEADERS)


async def static_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The page and its files: never sniffed, always revalidated (a deploy shows at once)."""
    if request.path == "/" or request.path.startswith("/static/"):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-cache")


def add_page(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_static("/static", WEB_ROOT)
    app.on_response_prepare.append(static_headers)
