"""What every console page shares: the per-request tools, rendering with the page headers, and the
signed-in guard (session cookie, current password epoch, CSRF on POST; operator pages for admin accounts
only: anyone else gets "not found")."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aicy.accounting.failures import FailureLimiter
from aicy.errors import AicyError, NotFound
from aicy.http.web.guide import money
from aicy.http.web.language import Lang, choose
from aicy.http.web.messages import CONSOLE
from aicy.http.web.routes import PAGE_HEADERS, page
from aicy.http.web.session import Session, Sessions, same_token
from aicy.serving.console import Console
from aicy.serving.services import Services
from aicy.storage.logins import Login, LoginStore

MAX_FORM_BYTES = 64 * 1024
LOGIN = "/console/login"
LOGIN_WINDOW_SECONDS = 600

Handler = Callable[[Request, Console, Sessions, Session, Login, Lang], Awaitable[Response]]


class BadForm(AicyError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_form"


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form, at most 64 KiB and 100 fields; the first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise BadForm("The form is too large.", status=413)
    if not body:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=100)
    return {k: v[0] for k, v in fields.items() if "\x00" not in k}


def utc(ms_or_s: int | None, millis: bool = False) -> str:
    if not ms_or_s:
        return ""
    seconds = ms_or_s / 1000 if millis else ms_or_s
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


class Pages:
    def __init__(self, env: Environment) -> None:
        self.env = env
        self._failures: FailureLimiter | None = None  # made with the app's settings at first use

    def tools(self, request: Request) -> tuple[Services, Console, Sessions]:
        services: Services = request.app.state.services
        settings = services.settings
        if self._failures is None:
            self._failures = FailureLimiter(settings.login_failures, LOGIN_WINDOW_SECONDS)
        logins = LoginStore(services.keys.engine, services.keys.tx)
        sessions = Sessions(
            request.app.state.session_secret,
            int(settings.console_session_hours * 3600),
            settings.resolved_public_url.startswith("https://"),
        )
        return services, Console(services, logins, self._failures), sessions

    def render(
        self, template: str, lang: Lang, status: int = 200, remember: bool = False, **context: Any
    ) -> Response:
        html = self.env.get_template(template).render(
            lang=lang,
            other_lang="en" if lang == "zh" else "zh",
            t=CONSOLE[lang],
            money=money,
            utc=utc,
            **context,
        )
        response = page(html, lang if remember else None)
        response.status_code = status
        return response

    @staticmethod
    def redirect(url: str) -> Response:
        return RedirectResponse(url, status_code=303, headers=PAGE_HEADERS)

    def signed_in(self, handler: Handler, operator: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            _, console, sessions = self.tools(request)
            session = sessions.read(request)
            login = await console.current(session.account_id, session.epoch) if session else None
            if session is None or login is None:
                if operator:  # operator pages are not advertised to anyone who is not signed in as one
                    return self.render("message.html", choose(request)[0], 404, message="Not found.")
                response = self.redirect(LOGIN)
                sessions.end(response)
                return response
            lang, _ = choose(request)
            context: dict[str, Any] = {"login": login, "csrf": session.csrf}
            try:
                if operator and not login.is_admin:
                    raise NotFound("Not found.")
                if request.method == "POST":
                    form = await read_form(request)
                    if not same_token(session.csrf, form.get("csrf")):
                        raise BadForm("The form expired; reload the page and try again.", status=403)
                    request.state.form = form
                return await handler(request, console, sessions, session, login, lang)
            except AicyError as exc:
                return self.render("message.html", lang, exc.status, message=exc.message, **context)

        return endpoint
