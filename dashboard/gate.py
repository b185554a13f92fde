"""The HTTP edge of sign-in: a session on every request, the login form, logout.

A Flask ``before_request`` hook on the Dash server refuses every request without a live
session: pages redirect to ``/login``; Dash's JSON endpoints (``/_dash-update-component``,
``/_dash-layout``, …) and anything else under ``/_`` answer 401. Only the login form
and the files of the assets folder it needs are public, decided by the route that answers
(:data:`PUBLIC_ENDPOINTS`). Every response carries :data:`SECURITY_HEADERS` (a content
security policy, no framing, no sniffing, no referrer) and all but static files
``Cache-Control: no-store``.

The cookie is Flask's signed session holding nothing but a session id (256 random bits,
new at every sign-in); the id names a row in ``dashboard_sessions``, so logging out or
disabling the user ends the session on the server, and it expires after
``session_lifetime_s`` whatever the browser does. The cookie is ``HttpOnly``,
``SameSite=Strict`` (which also keeps other sites from driving callbacks with it) and
``Secure`` when the settings say so.

The login form carries a token bound to a random value in a cookie of its own
(``factorstream_login``: ``HttpOnly``, ``SameSite=Strict``, only for ``/login``), as the
HMAC of that value under the session secret. Another site can neither read the token nor
have the browser send the cookie with its post, so it cannot sign a victim into the
attacker's account (login CSRF). A post without a matching token is refused with 400 and
is not a failed sign-in. The session cookie exists only once someone has signed in.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

import flask
import sqlalchemy as sa
from werkzeug.wrappers import Response

from dashboard.auth import sign_in
from dashboard.probes import PROBE_ENDPOINTS
from dashboard.throttle import LoginThrottle
from dashboard.users import User, UserDirectory, expire_sessions
from schemas.fields import Client

log = logging.getLogger(__name__)

COOKIE = "factorstream_session"
SESSION_ID = "sid"
LOGIN, LOGOUT = "/login", "/logout"
LOGIN_ENDPOINT = "factorstream_login"
PUBLIC_ENDPOINTS = frozenset({LOGIN_ENDPOINT, "_dash_assets.static", *PROBE_ENDPOINTS})
"""What answers without a session, by the route Flask matched (not by a path prefix:
``/assets//x`` is Dash's catch-all route, which serves the app)."""
STATIC_ENDPOINTS = frozenset({"_dash_assets.static", "/_dash-component-suites/"})

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        # Dash starts its renderer from an inline script and Plotly builds functions at
        # run time; no script from another origin runs, and nothing is sent to one
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Sent with every response; everything but the static files is also ``no-store``."""

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · factorstream</title>
<link rel="stylesheet" href="/assets/bootstrap.min.css">
<link rel="stylesheet" href="/assets/dashboard.css">
</head><body class="login-body">
<main class="login-card card shadow-sm">
  <div class="card-body p-4">
    <h1 class="h4 mb-1">factorstream</h1>
    <p class="text-muted mb-4">MFA audit dashboard · sign in with your password and
      the code from your authenticator app</p>
    {% if message %}<div class="alert alert-danger" role="alert" id="login-error">
      {{ message }}</div>{% endif %}
    <form method="post" action="/login" autocomplete="off">
      <input type="hidden" name="next" value="{{ next }}">
      <input type="hidden" name="csrf" value="{{ csrf }}">
      <div class="mb-3"><label class="form-label" for="name">User</label>
        <input class="form-control" id="name" name="name" required autofocus
               autocomplete="username" value="{{ name }}"></div>
      <div class="mb-3"><label class="form-label" for="password">Password</label>
        <input class="form-control" id="password" name="password" type="password" required
               autocomplete="current-password"></div>
      <div class="mb-4"><label class="form-label" for="code">Authenticator code</label>
        <input class="form-control" id="code" name="code" required inputmode="numeric"
               pattern="[0-9]{6,8}" maxlength="8" autocomplete="one-time-code"></div>
      <button class="btn btn-primary w-100" id="sign-in" type="submit">Sign in</button>
    </form>
  </div>
</main></body></html>
"""

REFUSED = "Sign-in refused: wrong user, password or code, or too many failed attempts."
"""The one answer to every refused sign-in: a locked account, an unknown name and a wrong
password look the same (no user enumeration); `users list` shows who is locked."""
TOO_MANY = "Too many sign-in attempts from here or in all: please wait a moment and try again."
STALE_FORM = "The sign-in form expired or did not come from this site: please sign in again."
CSRF_FIELD, FORM_COOKIE = "csrf", "factorstream_login"


@dataclass(frozen=True)
class SessionPolicy:
    secret: bytes
    lifetime: timedelta
    secure: bool
    keep_ended: timedelta | None = None
    """Retention: session rows over longer ago are deleted (at a sign-in, at most hourly;
    ``None``: kept)."""


SESSION_RETENTION_EVERY = timedelta(hours=1)


class SessionRetention:
    """Deletes the session rows over longer ago than ``keep``, at most every ``every``."""

    def __init__(
        self,
        keep: timedelta | None,
        *,
        every: timedelta = SESSION_RETENTION_EVERY,
        on_expired: Callable[[int], None] | None = None,
    ) -> None:
        """``on_expired``: told how many rows each run deleted (the metrics)."""
        self.keep, self.every, self.on_expired = keep, every, on_expired
        self._ran_at: datetime | None = None
        self.deleted = 0

    def run_if_due(self, engine: sa.Engine, *, now: datetime) -> int:
        """Delete the rows of sessions over before ``now - keep`` in the users' database
        ``engine``, unless it was done less than ``every`` ago; how many."""
        if self.keep is None or (self._ran_at is not None and now - self._ran_at < self.every):
            return 0
        self._ran_at = now
        deleted = expire_sessions(engine, ended_before=now - self.keep)
        self.deleted += deleted
        log.info("session retention: %d rows over before %s deleted", deleted, now - self.keep)
        if self.on_expired is not None:
            self.on_expired(deleted)
        return deleted


def current_user() -> User:
    """The signed-in user of this request (set by the gate; callbacks call this)."""
    user = flask.g.get("dashboard_user")
    if not isinstance(user, User):
        flask.abort(401)
    return user


def install_gate(
    server: flask.Flask,
    *,
    directory: UserDirectory,
    policy: SessionPolicy,
    now: Callable[[], datetime],
    throttle: LoginThrottle | None = None,
    on_sign_in: Callable[[str, str | None], None] | None = None,
    on_sessions_expired: Callable[[int], None] | None = None,
) -> None:
    """Configure the session cookie and add the gate, ``/login`` and ``/logout``; login
    posts are throttled by ``throttle`` (:mod:`dashboard.throttle`) before any password
    is checked. ``on_sign_in``: told each sign-in's outcome (``succeeded``, ``failed``,
    ``throttled``) and reason (the metrics); ``on_sessions_expired``: how many session rows
    each retention run deleted (the metrics)."""
    throttle = throttle or LoginThrottle()
    retention = SessionRetention(policy.keep_ended, on_expired=on_sessions_expired)
    retention.run_if_due(directory.engine, now=now())  # at start, then at sign-ins (hourly at most)
    server.secret_key = policy.secret
    server.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=policy.secure,
        PERMANENT_SESSION_LIFETIME=policy.lifetime,
        SESSION_REFRESH_EACH_REQUEST=False,
    )

    def gate() -> Response | None:
        path = flask.request.path
        if flask.request.endpoint in PUBLIC_ENDPOINTS:
            return None
        session_id = flask.session.get(SESSION_ID)
        user = (
            directory.session_user(session_id, now=now()) if isinstance(session_id, str) else None
        )
        if user is not None:
            flask.g.dashboard_user = user
            flask.g.dashboard_session = session_id
            return None
        if path.startswith("/_") or flask.request.method != "GET":
            return flask.make_response(flask.jsonify(error="sign-in required"), 401)
        return flask.redirect(f"{LOGIN}?next={quote(_safe_next(path))}")

    def login() -> Response:
        if flask.request.method != "POST":
            return _page(policy, next_=_safe_next(flask.request.args.get("next", "/")))
        form = flask.request.form
        name, next_ = form.get("name", "")[:64], _safe_next(form.get("next", "/"))
        bound = flask.request.cookies.get(FORM_COOKIE, "")
        given = form.get(CSRF_FIELD, "")[:128]
        if not bound or not hmac.compare_digest(_form_token(policy, bound), given):
            return _page(policy, next_=next_, name=name, message=STALE_FORM, status=400)
        wait = throttle.admit(flask.request.remote_addr, now().timestamp())
        if wait is not None:
            if on_sign_in is not None:
                on_sign_in("throttled", "per_address")
            return _too_many(policy, next_=next_, name=name, wait_s=wait)
        with throttle.checking() as turn:
            if not turn:
                if on_sign_in is not None:
                    on_sign_in("throttled", "busy")
                return _too_many(policy, next_=next_, name=name, wait_s=1.0)
            result = sign_in(
                directory,
                name=name,
                password=form.get("password", "")[:1024],
                code=form.get("code", "")[:16],
                now=now(),
                client=_client(),
            )
        if on_sign_in is not None:
            outcome = "failed" if result.user is None else "succeeded"
            on_sign_in(outcome, result.detail if result.user is None else None)
        if result.user is None:
            return _page(policy, next_=next_, name=name, message=REFUSED, status=401)
        old = flask.session.get(SESSION_ID)
        at = now()
        if isinstance(old, str):
            directory.end_session(old, now=at)
        flask.session.clear()  # a new session id at every sign-in (no fixation)
        flask.session[SESSION_ID] = directory.open_session(
            result.user.name, now=at, expires_at=at + policy.lifetime
        )
        retention.run_if_due(directory.engine, now=at)
        flask.session.permanent = True
        return flask.redirect(next_)

    def logout() -> Response:
        session_id = flask.session.get(SESSION_ID)
        if isinstance(session_id, str):
            directory.end_session(session_id, now=now())
        flask.session.clear()
        return flask.redirect(LOGIN)

    def headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        endpoint = flask.request.endpoint or ""
        if not any(endpoint.startswith(name) for name in STATIC_ENDPOINTS):
            response.headers["Cache-Control"] = "no-store"  # data, pages, the login form
        return response

    server.before_request(gate)
    server.after_request(headers)
    server.add_url_rule(LOGIN, LOGIN_ENDPOINT, login, methods=["GET", "POST"])
    server.add_url_rule(LOGOUT, "factorstream_logout", logout, methods=["POST"])


def _page(
    policy: SessionPolicy,
    *,
    next_: str,
    name: str = "",
    message: str | None = None,
    status: int = 200,
) -> Response:
    """The login form, its token bound to this browser's form cookie (made if missing)."""
    bound = flask.request.cookies.get(FORM_COOKIE, "")
    if not 32 <= len(bound) <= 64:
        bound = secrets.token_urlsafe(32)
    html = flask.render_template_string(
        LOGIN_PAGE, next=next_, name=name, message=message, csrf=_form_token(policy, bound)
    )
    response = flask.make_response(html, status)
    response.set_cookie(
        FORM_COOKIE,
        bound,
        path=LOGIN,
        httponly=True,
        samesite="Strict",
        secure=policy.secure,
    )
    return response


def _too_many(policy: SessionPolicy, *, next_: str, name: str, wait_s: float) -> Response:
    response = _page(policy, next_=next_, name=name, message=TOO_MANY, status=429)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
    return response


def _form_token(policy: SessionPolicy, bound: str) -> str:
    return hmac.new(policy.secret, b"login-form:" + bound.encode(), "sha256").hexdigest()


def _safe_next(target: str) -> str:
    """Only a local path: never another host (``//evil``, ``/\\evil``, ``https://…``)."""
    if not target.startswith("/") or target.startswith(("//", "/\\")) or target == LOGOUT:
        return "/"
    return target if target.isprintable() and len(target) <= 256 else "/"


def _client() -> Client | None:
    address = flask.request.remote_addr
    try:
        ip = str(ipaddress.ip_address(address)) if address else None
    except ValueError:
        ip = None
    agent = flask.request.headers.get("User-Agent", "")[:1024] or None
    return Client(ip=ip, user_agent=agent)
