"""The web page at ``/``: plain HTML, CSS and JavaScript shipped in the package (``web/``),
nothing from a CDN. It sends files to the server's own OpenAI-style API and shows each
transcript as its segments come; its microphone speaks the Speech websocket protocol."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB = Path(__file__).with_name("web")
# The page may load and call only this server (and read the files it makes itself): no other
# origin, no inline script.
POLICY = ("default-src 'self'; connect-src 'self' blob:; media-src 'self' blob:; "
          "object-src 'none'")  # fmt: skip


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(WEB / "index.html", headers={"Content-Security-Policy": POLICY})


def add_page(app: web.Application) -> None:
    """``/`` and its files under ``/static/``."""
    app.router.add_get("/", _index)
    app.router.add_static("/static/", WEB)
