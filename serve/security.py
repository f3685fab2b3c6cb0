"""Admin token, API key, request limits and text checks.

Why constant-time comparison: a secret compared with ``==`` leaks how many leading characters
matched through response timing; ``hmac.compare_digest`` does not.
"""

from __future__ import annotations

import contextlib
import hmac
import unicodedata

from fastapi import HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

ALLOWED_CONTROL = {"\t", "\n", "\r"}


def secrets_match(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def clean_text(value: str, field: str, max_chars: int) -> str:
    """Strip, then refuse empty text, oversize text, control characters and lone surrogates."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    text = value.strip()
    if not text:
        raise ValueError(f"{field} must not be empty")
    if len(text) > max_chars:
        raise ValueError(f"{field} is {len(text)} characters; the limit is {max_chars}")
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if (cat == "Cc" and ch not in ALLOWED_CONTROL) or cat == "Cs":
            raise ValueError(f"{field} contains a control character (U+{ord(ch):04X}) at position {i}")
    return text


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over a limit with 413, by Content-Length or while streaming.

    Uploads (``POST /v1/admin/knowledge-bases``) get their own, larger limit.
    """

    def __init__(self, app, max_body: int, max_upload: int, upload_prefix: str = "/v1/admin/knowledge-bases"):
        self.app, self.max_body, self.max_upload, self.upload_prefix = app, max_body, max_upload, upload_prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_upload if scope["path"].startswith(self.upload_prefix) else self.max_body
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        return await _send_413(send, limit)
                except ValueError:
                    return await _send_json(send, 400, {"detail": "invalid Content-Length header"})
        seen = 0
        state = {"started": False, "exceeded": False, "sent_413": False}

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    state["exceeded"] = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            # once the body ran over, whatever the app answers (frameworks turn the exception into
            # a 400) is replaced by one 413
            if state["exceeded"]:
                if not state["started"] and not state["sent_413"]:
                    state["sent_413"] = True
                    await _send_413(send, limit)
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        with contextlib.suppress(BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if state["exceeded"] and not state["started"] and not state["sent_413"]:
            await _send_413(send, limit)


async def _send_413(send, limit: int) -> None:
    await _send_json(send, 413, {"detail": f"request body larger than {limit} bytes"})


async def _send_json(send, status: int, body: dict) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


# ---- auth (FastAPI dependencies) ------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="Admin token (serve.admin_token / KIRA_ADMIN_TOKEN).")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="API key, required only when serve.api_key / KIRA_API_KEY is set.")


def require_admin(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    """Admin endpoints need the bearer admin token; with no token configured they are off."""
    token = request.app.state.kira.cfg.serve.admin_token
    if not token:
        raise HTTPException(403, "admin API disabled: set serve.admin_token or KIRA_ADMIN_TOKEN")
    if creds is None or not secrets_match(creds.credentials, token):
        raise HTTPException(401, "admin endpoints need 'Authorization: Bearer <admin token>'",
                            headers={"WWW-Authenticate": "Bearer"})


def require_api_key(request: Request, key: str | None = Security(_api_key)) -> None:
    expected = request.app.state.kira.cfg.serve.api_key
    if expected and not secrets_match(key, expected):
        raise HTTPException(401, "missing or wrong X-API-Key header")
