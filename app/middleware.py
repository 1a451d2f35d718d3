"""ASGI middleware: an HTTP-only base, the request-body limit, security headers, cross-site POSTs."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ImageError


class HTTPMiddleware:
    """ASGI middleware for HTTP requests: other scopes (lifespan, websockets) pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request."""
        raise NotImplementedError


class BodySizeLimit(HTTPMiddleware):
    """Stop reading a request body past CONVLENS_MAX_UPLOAD_BYTES + 1 MiB (413).

    The Content-Length check in app/params.py refuses honest large requests at once; this one also
    catches chunked bodies that announce no length, before they are spooled to disk.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = scope["app"].state.settings
        limit = settings.max_upload_bytes + (1 << 20)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ImageError(413, f"`image`: the request body is over the limit of "
                                     f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)")
            return message

        await self.app(scope, limited, send)


# script-src 'self': no inline scripts or handlers on any page, /docs included.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
CROSS_SITE_BODY = json.dumps({"detail": "a page on another site may not send requests to this server from "
                              "your browser (Sec-Fetch-Site: cross-site)", "field": None}).encode()


class SecurityHeaders(HTTPMiddleware):
    """Every response gets nosniff and Referrer-Policy; HTML gets a strict CSP that forbids framing.

    A browser POST from another site (Sec-Fetch-Site: cross-site) is refused with 403 before any
    route reads it; curl and other clients send no such header and are not affected.
    """

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        unsafe = scope["method"] not in ("GET", "HEAD", "OPTIONS")
        if unsafe and headers.get(b"sec-fetch-site") == b"cross-site":
            length = str(len(CROSS_SITE_BODY)).encode()
            await send({"type": "http.response.start", "status": 403, "headers": [
                (b"content-type", b"application/json"), (b"content-length", length), *COMMON_HEADERS]})
            await send({"type": "http.response.body", "body": CROSS_SITE_BODY})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = [(k, v) for k, v in message.get("headers", []) if k.lower() not in (
                    b"x-content-type-options", b"referrer-policy")]
                ctype = next((v for k, v in raw if k.lower() == b"content-type"), b"")
                if ctype.startswith(b"text/html") and not any(k.lower() == b"content-security-policy"
                                                              for k, _ in raw):
                    raw.append((b"content-security-policy", CSP.encode()))
                message["headers"] = [*raw, *COMMON_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)
