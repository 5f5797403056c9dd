"""Operator token checks.

Writes (labels, session commands, e-stop, teleop) always need the token. Reads need it only from
clients on other machines, unless the dashboard was started with ``public_read``.
The token travels as ``Authorization: Bearer <token>`` (or ``X-Robot-Stack-Token``); it is
compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import HTTPException, Request, WebSocket, status

from .config import is_loopback

TOKEN_HEADER = "x-robot-stack-token"


def new_token() -> str:
    """A random operator token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def presented_token(conn: Request | WebSocket) -> str | None:
    auth = conn.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return conn.headers.get(TOKEN_HEADER)


def token_matches(expected: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def client_is_local(conn: Request | WebSocket) -> bool:
    return conn.client is not None and is_loopback(conn.client.host)


def read_needs_token(conn: Request | WebSocket, public_read: bool) -> bool:
    return not public_read and not client_is_local(conn)


def unauthorized(what: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED,
                         detail=f"{what} needs the operator token (Authorization: Bearer <token>); "
                                "it is printed when the dashboard starts",
                         headers={"WWW-Authenticate": "Bearer"})
