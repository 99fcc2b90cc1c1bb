"""API keys, sent as `Authorization: Bearer <key>`.

Writes (PUT/DELETE /images) need LOOKALIKE_API_KEY; with none set they are refused (403), never
silently open. Reads are open unless LOOKALIKE_API_READ_KEY is set; then they need it (or the
write key). Keys are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from lookalike.errors import Forbidden, Unauthorized


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _matches(sent: str | None, *keys: str | None) -> bool:
    return sent is not None and any(key and hmac.compare_digest(sent.encode(), key.encode()) for key in keys)


def require_write(request: Request) -> None:
    settings = request.app.state.service.settings
    if not settings.api_key:
        raise Forbidden("writes are disabled: set LOOKALIKE_API_KEY on the API and send it as "
                        "'Authorization: Bearer <key>'")  # fmt: skip
    sent = bearer(request)
    if not _matches(sent, settings.api_key):
        raise Unauthorized("this route needs the API key as 'Authorization: Bearer <key>'" if sent is None
                           else "wrong API key")  # fmt: skip


def require_read(request: Request) -> None:
    settings = request.app.state.service.settings
    if not settings.api_read_key:
        return
    sent = bearer(request)
    if not _matches(sent, settings.api_read_key, settings.api_key):
        raise Unauthorized("this API needs a read key as 'Authorization: Bearer <key>'" if sent is None
                           else "wrong API key")  # fmt: skip
