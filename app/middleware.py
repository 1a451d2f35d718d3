"""ASGI middleware: the request-body limit, applied before any route reads the body."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ImageError


class BodySizeLimit:
    """Stop reading a request body past CONVLENS_MAX_UPLOAD_BYTES + 1 MiB (413).

    The Content-Length check in app/params.py refuses honest large requests at once; this one also
    catches chunked bodies that announce no length, before they are spooled to disk.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
