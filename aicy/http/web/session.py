"""Console sessions: a signed, expiring, HttpOnly, SameSite=Lax cookie naming the account, its session
epoch (a password change ends older sessions) and the session's CSRF token; nothing is stored server-side.

Before sign-in, forms are protected by a double-submit token: a random cookie repeated in the form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "aicy_session"
FORM_COOKIE = "aicy_form"
COOKIE_PATH = "/console"


@dataclass(frozen=True, slots=True)
class Session:
    account_id: str
    epoch: int
    csrf: str


class Sessions:
    def __init__(self, secret: bytes, max_age_seconds: int, secure: bool) -> None:
        key = hmac.new(secret, b"aicy console sessions", hashlib.sha256).digest()
        self._serializer = URLSafeTimedSerializer(key, salt="session")
        self.max_age = max_age_seconds
        self.secure = secure

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw or len(raw) > 4096:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self.max_age)
        except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
            return None
        if not isinstance(data, dict):
            return None
        account, epoch, csrf = data.get("a"), data.get("e"), data.get("c")
        if not isinstance(account, str) or not isinstance(epoch, int) or not isinstance(csrf, str):
            return None
        return Session(account, epoch, csrf)

    def start(self, response: Response, account_id: str, epoch: int) -> None:
        token = self._serializer.dumps({"a": account_id, "e": epoch, "c": secrets.token_urlsafe(24)})
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.max_age,
            path=COOKIE_PATH,
            httponly=True,
            secure=self.secure,
            samesite="lax",
        )
        response.delete_cookie(FORM_COOKIE, path=COOKIE_PATH)

    def end(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    def form_token(self, request: Request, response_cookies: dict[str, str]) -> str:
        """The pre-sign-in CSRF token: the form cookie's value (made when there is none)."""
        token = request.cookies.get(FORM_COOKIE)
        if not token or len(token) > 64:
            token = secrets.token_urlsafe(24)
            response_cookies[FORM_COOKIE] = token
        return token

    def set_form_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            FORM_COOKIE, token, path=COOKIE_PATH, httponly=True, secure=self.secure, samesite="strict"
        )


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))
