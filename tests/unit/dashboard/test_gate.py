"""Every page and callback needs a session; the cookie is locked down; sessions end."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import dash
import pytest
import sqlalchemy as sa
from dash import Dash
from flask.testing import FlaskClient

from dashboard.app import create_app
from dashboard.gate import COOKIE
from dashboard.throttle import LoginLimits, LoginThrottle, client_key
from dashboard.users import UserDirectory
from factorstream.dashboard_config import dashboard_config
from factorstream.settings import Settings
from schemas import decode
from tests.unit.dashboard.conftest import (
    AddUser,
    Clock,
    callback_body,
    form_token,
    post_login,
    sign_in,
)
from verifiers.publish import outbox_events

DASH_ENDPOINTS = ("/_dash-layout", "/_dash-dependencies", "/_reload-hash", "/_favicon.ico")


def _page_paths(app: Dash) -> list[str]:
    paths = [page["relative_path"] for page in dash.page_registry.values()]
    assert len(paths) == 9, paths
    return paths


def _update_body() -> dict[str, object]:
    return {
        "output": "..kpi-verifications.children...overview-daily.figure..",
        "outputs": [{"id": "overview-daily", "property": "figure"}],
        "inputs": [{"id": "filter-tenant", "property": "value", "value": "acme"}],
        "changedPropIds": ["filter-tenant.value"],
        "state": [],
    }


def test_without_a_session_pages_redirect_and_dash_endpoints_answer_401(
    app: Dash, client: FlaskClient
) -> None:
    for path in [*_page_paths(app), "/no-such-page"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")
    for path in DASH_ENDPOINTS:
        assert client.get(path).status_code == 401, path
    response = client.post("/_dash-update-component", json=_update_body())
    assert response.status_code == 401
    assert b"figure" not in response.data
    assert client.get("/_dash-component-suites/dash/dcc/dash_core_components.js").status_code == 401
    assert client.get("/login").status_code == 200
    assert client.head("/login").status_code == 200
    for sneaky in ("/assets/../_dash-layout", "/assets/%2e%2e/_dash-layout", "/login/../audit"):
        response = client.get(sneaky)
        assert response.status_code in (302, 401, 404), sneaky
        assert b"page-container" not in response.data and b"filter-tenant" not in response.data
    assert client.get("/assets/bootstrap.min.css").status_code == 200


def test_sign_in_sets_a_locked_down_cookie_and_opens_every_page(
    app: Dash, client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    response = sign_in(client, account, clock())
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    for path in _page_paths(app):
        assert client.get(path).status_code == 200, path
    assert client.get("/_dash-layout").status_code == 200
    body = callback_body(app, "overview-daily", {"filter-tenant.value": "acme"})
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200 and b"overview-daily" in response.data


def test_secure_cookies_when_the_settings_say_so(
    settings: object, lake: object, clock: Clock, add_user: AddUser
) -> None:
    from dashboard.app import create_app

    settings.dashboard.secure_cookies = True  # type: ignore[attr-defined]
    app = create_app(dashboard_config(settings), now=clock)  # type: ignore[arg-type]
    with app.server.test_client() as client:
        response = sign_in(client, add_user(), clock())
        assert "Secure" in response.headers["Set-Cookie"]


def test_a_wrong_code_in_the_form_is_refused_with_401(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    response = post_login(client, name=account.name, password=account.password, code="000000")
    assert response.status_code == 401
    assert b"Sign-in refused" in response.data
    assert COOKIE not in response.headers.get("Set-Cookie", "")
    assert client.get("/_dash-layout").status_code == 401


def test_logout_ends_the_session_on_the_server(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    sign_in(client, add_user(), clock())
    stolen = client.get_cookie(COOKIE)
    assert stolen is not None
    assert client.post("/logout").status_code == 302
    assert client.get("/_dash-layout").status_code == 401
    client.set_cookie(COOKIE, stolen.value)  # the old cookie, replayed
    assert client.get("/_dash-layout").status_code == 401


def test_session_id_is_rotated_at_sign_in(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    sign_in(client, account, clock())
    first = client.get_cookie(COOKIE)
    clock.advance(seconds=31)
    sign_in(client, account, clock())
    second = client.get_cookie(COOKIE)
    assert first is not None and second is not None and first.value != second.value
    client.set_cookie(COOKIE, first.value)  # the session before the new sign-in is over
    assert client.get("/_dash-layout").status_code == 401


def test_sessions_expire_after_their_lifetime(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    sign_in(client, add_user(), clock())
    clock.advance(hours=7, minutes=59)
    assert client.get("/_dash-layout").status_code == 200
    clock.advance(minutes=2)
    assert client.get("/_dash-layout").status_code == 401


def test_forged_or_tampered_cookies_are_refused(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    sign_in(client, add_user(), clock())
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    payload, rest = cookie.value.split(".", 1)
    client.set_cookie(COOKIE, payload[:-2] + "xx." + rest)
    assert client.get("/_dash-layout").status_code == 401
    client.set_cookie(COOKIE, "eyJzaWQiOiJhZG1pbiJ9.AAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert client.get("/_dash-layout").status_code == 401


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_never_leaves_the_site(
    client: FlaskClient, add_user: AddUser, clock: Clock, target: str
) -> None:
    account = add_user()
    response = post_login(
        client,
        name=account.name,
        password=account.password,
        code=account.code(clock()),
        next=target,
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_a_login_post_without_the_forms_token_is_refused_and_not_counted(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    """Login CSRF: a post that did not come from our form gets 400; it is not a failed
    sign-in either (four wrong passwords would lock an admin, whose limit is three)."""
    account = add_user("root", role="admin")
    for _ in range(4):
        response = client.post(
            "/login", data={"name": account.name, "password": "wrong", "code": "123456"}
        )
        assert response.status_code == 400
        assert b"did not come from this site" in response.data
    assert sign_in(client, account, clock()).status_code == 302


def test_a_token_from_another_browser_is_refused(
    app: Dash, client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    """The attacker reads a token from their own browser and has the victim's browser post
    the attacker's credentials with it: refused, and the victim gets no session."""
    attacker_account = add_user("mallory")
    with app.server.test_client() as attacker:
        stolen = form_token(attacker)
    form_token(client)  # the victim has visited the login page before: a token of their own
    response = client.post(
        "/login",
        data={
            "csrf": stolen,
            "name": attacker_account.name,
            "password": attacker_account.password,
            "code": attacker_account.code(clock()),
        },
    )
    assert response.status_code == 400
    assert client.get("/_dash-layout").status_code == 401
    assert post_login(client, name="mallory", password="x", code="1").status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/assets//x",
        "/assets//dashboard.css",
        "/assets/%2Fx",
        "/assets/no-such-file.css/../../audit",
        "/assets/",
        "/assets",
        "/login/",
        "/loginx",
    ],
)
def test_the_gate_decides_by_the_route_that_answers_not_by_the_path(
    client: FlaskClient, path: str
) -> None:
    """``/assets//x`` looks like an asset but is answered by Dash's catch-all route, which
    serves the app shell: without a session it must not."""
    response = client.get(path)
    assert response.status_code in (302, 401, 404), path
    assert b"_dash-config" not in response.data and b"_dash-renderer" not in response.data


def test_every_response_carries_the_security_headers(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    account = add_user()
    anonymous = [client.get("/login"), client.get("/"), client.get("/_dash-layout")]
    asset = client.get("/assets/bootstrap.min.css")
    sign_in(client, account, clock())
    signed_in = [client.get("/"), client.get("/_dash-layout")]
    for response in [*anonymous, asset, *signed_in]:
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "object-src 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
    for response in [*anonymous, *signed_in]:  # pages, data, the login form
        assert response.headers["Cache-Control"] == "no-store"
    assert asset.headers.get("Cache-Control") != "no-store"  # static: may be cached


def test_a_locked_account_looks_like_an_unknown_one(
    client: FlaskClient, add_user: AddUser, clock: Clock
) -> None:
    """No user enumeration: an attacker who locked a name cannot tell from the answer
    whether the name exists."""
    account = add_user()
    for _ in range(4):
        clock.advance(seconds=5)
        post_login(client, name=account.name, password="wrong password!", code="000000")
    clock.advance(seconds=5)
    locked = sign_in(client, account, clock())  # right password and code, but locked
    unknown = post_login(client, name="nobody-here", password="x" * 12, code="123456")
    assert locked.status_code == unknown.status_code == 401
    assert _message(locked.data) == _message(unknown.data)


def _message(page: bytes) -> bytes:
    start = page.index(b'id="login-error">')
    return page[start : page.index(b"</div>", start)]


def _attempts(directory: UserDirectory) -> int:
    with directory.engine.connect() as connection:
        values = connection.execute(sa.select(outbox_events.c.value)).scalars().all()
    return sum(decode(bytes(v)).type == "auth.login.attempted" for v in values)


def test_login_posts_beyond_a_clients_budget_get_429_before_any_password_check(
    client: FlaskClient, directory: UserDirectory, add_user: AddUser, clock: Clock
) -> None:
    """The scrypt oracle: one address guessing as fast as it can. Its 11th post within a
    minute is refused before the hash and before the lockout counts it; other addresses
    are not held up; a token is back after six seconds."""
    account = add_user()
    guess = {"name": account.name, "password": "wrong password!", "code": "000000"}
    for _ in range(10):
        assert post_login(client, **guess).status_code == 401
    counted = _attempts(directory)
    refused = post_login(client, **guess)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 6
    assert b"Too many sign-in attempts" in refused.data
    assert _attempts(directory) == counted  # no hash, no event: no guess was made
    other = {"REMOTE_ADDR": "198.51.100.7"}
    token = form_token(client)
    answer = client.post("/login", data={"csrf": token, **guess}, environ_base=other)
    assert answer.status_code == 401
    clock.advance(seconds=6)
    assert post_login(client, **guess).status_code == 401


def test_addresses_of_one_ipv6_slash_64_share_a_budget() -> None:
    throttle = LoginThrottle(LoginLimits(per_client_per_minute=3))
    for host in range(1, 4):
        assert throttle.admit(f"2001:db8:1:2::{host}", 0.0) is None
    assert throttle.admit("2001:db8:1:2:ffff::9", 0.0) is not None  # same /64
    assert throttle.admit("2001:db8:1:3::1", 0.0) is None  # the next /64
    assert throttle.admit("::ffff:192.0.2.1", 0.0) is None
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"


def test_the_overall_budget_holds_against_many_addresses(
    settings: Settings, lake: Path, clock: Clock, add_user: AddUser
) -> None:
    config = replace(
        dashboard_config(settings),
        login_limits=LoginLimits(per_client_per_minute=10, per_minute=5),
    )
    app = create_app(config, now=clock)
    account = add_user()
    guess = {"name": account.name, "password": "wrong password!", "code": "000000"}
    with app.server.test_client() as client:
        statuses = [
            client.post(
                "/login",
                data={"csrf": form_token(client), **guess},
                environ_base={"REMOTE_ADDR": f"203.0.113.{n}"},
            ).status_code
            for n in range(1, 9)
        ]
    assert statuses == [401] * 5 + [429] * 3


def test_at_most_the_configured_password_checks_run_at_once() -> None:
    """Sixteen concurrent sign-ins (1.3 GB of scrypt at once before): two hash at a time,
    the posts that wait too long for a turn are told to come back."""
    throttle = LoginThrottle(LoginLimits(concurrent_checks=2, check_wait_s=0.2))
    running, peak, turned_away = 0, 0, 0
    lock = threading.Lock()

    def sign_in_once() -> None:
        nonlocal running, peak, turned_away
        with throttle.checking() as turn:
            if not turn:
                with lock:
                    turned_away += 1
                return
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.15)  # a password check
            with lock:
                running -= 1

    threads = [threading.Thread(target=sign_in_once) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2
    assert 0 < turned_away < 16
