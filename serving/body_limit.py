"""Refuse oversized request bodies before they are read into memory.

Pydantic validation only sees a body once the whole of it is in memory: eight concurrent 50 MB bodies
cost a worker 240 MB before any of them was refused. This ASGI middleware answers 413 from the
Content-Length header alone, and counts the bytes of a body sent without one (chunked), cutting it off
with 413 as soon as it passes the limit - so no more than `max_bytes` of one body is ever held.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from serving.schemas import TOO_LARGE, error_body, field_error

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _too_large_body(max_bytes: int, size: int | None) -> bytes:
    said = f"the body is {size:,} bytes" if size is not None else "the body is larger than the limit"
    return json.dumps(error_body([field_error((), f"{said}; at most {max_bytes:,}", "too_large")], TOO_LARGE)).encode()


class BodyLimit:
    """ASGI middleware: 413 for any HTTP request whose body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
            return
        seen = 0
        refused = False

        async def counted_receive() -> Message:
            """Past the limit: answer 413 now and tell the app the client has gone (it stops reading)."""
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    await self._refuse(send, None)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after a 413, whatever the app answers to the "disconnect" goes nowhere
                await send(message)

        await self.app(scope, counted_receive, guarded_send)

    async def _refuse(self, send: Send, size: int | None) -> None:
        body = _too_large_body(self.max_bytes, size)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
