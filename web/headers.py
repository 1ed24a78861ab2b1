"""Security headers on every response: no framing by other sites, no MIME sniffing, no
Referer (a dashboard URL may carry `?token=`), and a Content-Security-Policy.

The dashboard's policy lets pages load and connect only to this origin. NiceGUI renders with
Vue's template compiler and inline bootstrap scripts, so scripts need 'unsafe-inline' and
'unsafe-eval'; what an injected script could reach is still only this site. API answers (JSON)
may load nothing at all.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "object-src 'none'"
)
# The interactive docs (/docs, /redoc) are served from this origin too (fastapi-offline's
# assets): one inline script starts them, and ReDoc runs a worker made from a blob.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
NOTHING_CSP = "default-src 'none'; frame-ancestors 'none'"
_DOCS = ("/docs", "/redoc")
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers.setdefault(name, value)
                html = headers.get("content-type", "").startswith("text/html")
                if html and path.startswith(_DOCS):
                    policy = DOCS_CSP
                else:
                    policy = DASHBOARD_CSP if html else NOTHING_CSP
                headers.setdefault("Content-Security-Policy", policy)
            await send(message)

        await self.app(scope, receive, with_headers)
