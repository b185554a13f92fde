"""The pollers against a local HTTP server playing each provider's API: pages, cursors,
429 with the provider's reset header, a 500, tokens that expire or are revoked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from schemas import Event
from sources.auth0_api import Auth0Api, Auth0LogClient
from sources.cursors import CursorStore
from sources.delivery import BrokerUnavailable
from sources.entra_api import EntraApi, EntraSignInClient
from sources.idp_http import ProviderRefused, get
from sources.keycloak_api import KeycloakApi, KeycloakEventClient
from sources.okta_api import OktaApi, OktaLogClient
from sources.pages import LogClient
from sources.polling import Mapper, Poller, PollSchedule, UnmappedLog
from sources.unmapped import Unmapped
from tests import idp_fakes as fakes
from tests.support import until

FAST = PollSchedule(interval_s=0.05, backoff_initial_s=0.05, backoff_max_s=0.2)


class RecordingDelivery:
    """Acknowledges everything (or, while ``down``, nothing) and keeps what it took."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False

    async def deliver(self, events: Sequence[Event]) -> None:
        if self.down:
            raise BrokerUnavailable("broker down (test)")
        self.events += events

    @property
    def ids(self) -> list[str]:
        return [event.id for event in self.events]


class ShiftedClock:
    """The real clock, moved on by ``offset`` (token lifetimes are measured on it)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def idp() -> Iterator[fakes.FakeIdp]:
    yield from fakes.serve(fakes.FakeIdp())


@pytest.fixture
def store(tmp_path: Path) -> CursorStore:
    return CursorStore(tmp_path / "cursors")


def _poller(
    client: LogClient,
    mapper: Mapper,
    delivery: RecordingDelivery,
    store: CursorStore,
    tmp_path: Path,
    clock: Callable[[], datetime],
) -> Poller:
    unmapped = UnmappedLog(tmp_path / "unmapped.jsonl")
    return Poller("test", client, mapper, delivery, store, unmapped, clock, FAST)


async def _run_until(poller: Poller, done: Callable[[], bool], timeout: float = 20) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(poller.run(stop))
    try:
        await until(lambda: done() or task.done(), timeout=timeout, what="the poller")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def _mapped_ids(records: list[dict[str, Any]], mapper: Mapper) -> list[str]:
    return [e.id for e in map(mapper, records) if not isinstance(e, Unmapped)]


async def test_auth0_pages_by_checkpoint_through_429_500_and_a_revoked_token(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.auth0 = fakes.auth0_logs(230)
    expected = _mapped_ids(idp.auth0, fakes.auth0_mapper)
    delivery = RecordingDelivery()
    clock = ShiftedClock()
    async with httpx.AsyncClient() as http:
        api = Auth0Api(idp.base_url, "client", "secret", page_size=50)
        poller = _poller(Auth0LogClient(api, http, clock), fakes.auth0_mapper, delivery,
                         store, tmp_path, clock)  # fmt: skip
        await poller.poll_page()  # the oldest 50, by date
        idp.fail_next(429, **fakes.rate_limit_headers("auth0", 1.0))
        idp.fail_next(500)
        idp.revoke_tokens()
        await _run_until(poller, lambda: poller.state.caught_up_at is not None)

    assert delivery.ids == expected  # each once, in order
    state = store.load("test")
    assert state.position == {"from": idp.auth0[-1]["log_id"]}
    assert state.unmapped == {"not_mfa": 46} and state.delivered == len(expected)
    assert state.last_error is None  # cleared by the success after the faults
    assert (tmp_path / "unmapped.jsonl").read_text().count("\n") == 46
    statuses = [status for _, status in idp.answers]
    assert statuses[:5] == [200, 401, 429, 500, 200]
    limited_at = idp.answers[2][0]
    assert idp.answers[3][0] >= int(limited_at) + 1, "called again before x-ratelimit-reset"
    assert len(idp.token_requests) == 2  # the first token, and one after the revocation


async def test_a_token_is_renewed_before_it_expires(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.auth0 = fakes.auth0_logs(120)
    clock = ShiftedClock()
    delivery = RecordingDelivery()
    async with httpx.AsyncClient() as http:
        api = Auth0Api(idp.base_url, "client", "secret", page_size=50)
        client = Auth0LogClient(api, http, clock, refresh_margin_s=60)
        poller = _poller(client, fakes.auth0_mapper, delivery, store, tmp_path, clock)
        await poller.poll_page()
        clock.offset = timedelta(seconds=3600 - 30)  # within the margin of its expiry
        await poller.poll_page()
    assert len(idp.token_requests) == 2
    assert [a for _, _, a in idp.api_requests()] == ["Bearer tok-1", "Bearer tok-2"]  # no 401
    assert len(delivery.events) == len(_mapped_ids(idp.auth0[:100], fakes.auth0_mapper))


async def test_refused_credentials_are_the_last_error_and_the_cursor_stays(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.auth0 = fakes.auth0_logs(10)
    delivery = RecordingDelivery()
    async with httpx.AsyncClient() as http:
        api = Auth0Api(idp.base_url, "client", "wrong")
        poller = _poller(Auth0LogClient(api, http, ShiftedClock()), fakes.auth0_mapper,
                         delivery, store, tmp_path, ShiftedClock())  # fmt: skip
        await _run_until(poller, lambda: store.load("test").last_error is not None)
    state = store.load("test")
    assert "401" in (state.last_error or "") and state.position == {}
    assert delivery.events == []


async def test_a_broker_outage_keeps_the_cursor_until_the_page_is_acknowledged(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.auth0 = fakes.auth0_logs(60)
    delivery = RecordingDelivery()
    delivery.down = True
    clock = ShiftedClock()
    async with httpx.AsyncClient() as http:
        api = Auth0Api(idp.base_url, "client", "secret", page_size=50)
        poller = _poller(Auth0LogClient(api, http, clock), fakes.auth0_mapper, delivery,
                         store, tmp_path, clock)  # fmt: skip
        with pytest.raises(BrokerUnavailable):
            await poller.poll_page()
        assert store.load("test").position == {}
        delivery.down = False
        await _run_until(poller, lambda: poller.state.caught_up_at is not None)
    assert delivery.ids == _mapped_ids(idp.auth0, fakes.auth0_mapper)


def _rsa_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.mark.parametrize("auth", ["private_key_jwt", "ssws"])
async def test_okta_follows_the_link_cursor_and_resumes_from_it(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path, auth: str
) -> None:
    idp.okta = fakes.okta_events(120)
    delivery = RecordingDelivery()
    clock = ShiftedClock()
    if auth == "ssws":
        api = OktaApi(idp.base_url, api_token=fakes.OKTA_API_TOKEN.removeprefix("SSWS "),
                      page_size=50, lookback_s=10 * 86400)  # fmt: skip
    else:
        api = OktaApi(idp.base_url, client_id="0oa1", private_key_pem=_rsa_pem(),
                      key_id="k1", page_size=50, lookback_s=10 * 86400)  # fmt: skip
    async with httpx.AsyncClient() as http:
        idp.fail_next(429, **fakes.rate_limit_headers("okta", 1.0))
        poller = _poller(OktaLogClient(api, http, clock), fakes.okta_mapper, delivery,
                         store, tmp_path, clock)  # fmt: skip
        await _run_until(poller, lambda: poller.state.caught_up_at is not None)
        assert store.load("test").position["after"] == "okta-000119"
        assert store.load("test").position["newest"] == idp.okta[-1]["published"]
        idp.okta += fakes.okta_events(30, first=120)
        # a new poller (a restart) starts from the saved cursor, not from `since`
        again = _poller(OktaLogClient(api, http, clock), fakes.okta_mapper, delivery,
                        store, tmp_path, clock)  # fmt: skip
        await again.poll_page()
    assert delivery.ids == _mapped_ids(idp.okta, fakes.okta_mapper)
    if auth == "private_key_jwt":
        form = idp.token_requests[0]
        assert form["client_assertion_type"] == [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ]
        assert form["scope"] == ["okta.logs.read"]
    else:
        assert idp.token_requests == []


async def test_keycloak_windows_deliver_each_event_once_across_shared_milliseconds(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.keycloak = fakes.keycloak_events(95, per_ms=3)
    delivery = RecordingDelivery()
    clock = ShiftedClock()
    lookback = (datetime.now(UTC) - fakes.START).total_seconds() + 60
    api = KeycloakApi(idp.base_url, "acme", "factorstream", "secret", page_size=10,
                      lookback_s=lookback)  # fmt: skip
    async with httpx.AsyncClient() as http:
        client = KeycloakEventClient(api, http, clock)
        poller = _poller(client, fakes.keycloak_mapper, delivery, store, tmp_path, clock)
        idp.fail_next(500)
        await _run_until(poller, lambda: poller.state.caught_up_at is not None)
        assert sorted(delivery.ids) == sorted(_mapped_ids(idp.keycloak, fakes.keycloak_mapper))
        # more at the last millisecond already seen, and later
        added = fakes.keycloak_events(5, first=95, per_ms=3)
        added[0]["time"] = idp.keycloak[-1]["time"]
        idp.keycloak += added
        before = len(delivery.events)
        await poller.poll_page()
    assert len(delivery.ids) == len(set(delivery.ids)) == before + 5
    assert [p for _, p, _ in idp.api_requests("/admin/realms/acme/admin-events")]


async def test_entra_sweeps_next_links_and_a_restart_resumes_the_sweep(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.entra = fakes.entra_signins(70, per_s=2)
    delivery = RecordingDelivery()
    clock = ShiftedClock()
    lookback = (datetime.now(UTC) - fakes.START).total_seconds() + 60
    api = EntraApi("contoso", "app", "secret", graph_url=idp.base_url,
                   login_url=idp.base_url, page_size=20, lookback_s=lookback)  # fmt: skip
    async with httpx.AsyncClient() as http:
        first = _poller(EntraSignInClient(api, http, clock), fakes.entra_mapper, delivery,
                        store, tmp_path, clock)  # fmt: skip
        await first.poll_page()
        assert "next_link" in store.load("test").position
        idp.fail_next(429, **fakes.rate_limit_headers("entra", 1.0))
        restarted = _poller(EntraSignInClient(api, http, clock), fakes.entra_mapper,
                            delivery, store, tmp_path, clock)  # fmt: skip
        await _run_until(restarted, lambda: restarted.state.caught_up_at is not None)
        assert sorted(delivery.ids) == sorted(_mapped_ids(idp.entra, fakes.entra_mapper))
        idp.entra += fakes.entra_signins(4, first=70, per_s=2)
        before = len(delivery.ids)
        await restarted.poll_page()
    assert len(delivery.ids) == len(set(delivery.ids)) == before + 4
    assert idp.token_requests[0]["scope"] == [f"{idp.base_url}/.default"]


async def test_okta_starts_again_from_the_newest_record_when_its_cursor_is_refused(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.okta = fakes.okta_events(60)
    delivery = RecordingDelivery()
    clock = ShiftedClock()
    api = OktaApi(idp.base_url, api_token=fakes.OKTA_API_TOKEN.removeprefix("SSWS "),
                  page_size=50, lookback_s=10 * 86400)  # fmt: skip
    async with httpx.AsyncClient() as http:
        poller = _poller(OktaLogClient(api, http, clock), fakes.okta_mapper, delivery,
                         store, tmp_path, clock)  # fmt: skip
        await _run_until(poller, lambda: poller.state.caught_up_at is not None)
        idp.okta += fakes.okta_events(10, first=60)
        idp.fail_next(400)  # "after" no longer valid
        idp.fail_next(400)  # refused without a cursor too: a wait, then again
        before = len(delivery.ids)
        await _run_until(poller, lambda: len(delivery.ids) >= before + 10)
    ids = delivery.ids
    assert set(ids) == set(_mapped_ids(idp.okta, fakes.okta_mapper))
    assert len(ids) - len(set(ids)) <= 1  # the newest record before the refusal, again


async def test_a_next_link_to_another_host_is_refused_and_no_token_goes_there(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path
) -> None:
    idp.entra = fakes.entra_signins(30)
    idp.foreign_next_links = True
    clock = ShiftedClock()
    lookback = (datetime.now(UTC) - fakes.START).total_seconds() + 60
    api = EntraApi("contoso", "app", "secret", graph_url=idp.base_url,
                   login_url=idp.base_url, page_size=20, lookback_s=lookback)  # fmt: skip
    delivery = RecordingDelivery()
    async with httpx.AsyncClient() as http:
        poller = _poller(EntraSignInClient(api, http, clock), fakes.entra_mapper, delivery,
                         store, tmp_path, clock)  # fmt: skip
        await _run_until(poller, lambda: store.load("test").last_error is not None)
    state = store.load("test")
    assert "another host" in (state.last_error or "")
    assert "next_link" not in state.position and delivery.events == []


async def test_an_endless_answer_is_cut_off_at_the_limit(idp: fakes.FakeIdp) -> None:
    idp.auth0 = fakes.auth0_logs(100)
    async with httpx.AsyncClient() as http:
        client = Auth0LogClient(Auth0Api(idp.base_url, "c", "s"), http, ShiftedClock())
        with pytest.raises(ProviderRefused, match="over 4096 bytes") as refused:
            await get(http, client.token, client.logs_url, clock=ShiftedClock(),
                      params={"from": "0", "take": "100"}, max_bytes=4096)  # fmt: skip
    assert refused.value.status == 413


class Crash(BaseException):
    """The process dies here (not an error anything would catch)."""


async def test_a_crash_between_delivery_and_save_polls_the_same_page_again(
    idp: fakes.FakeIdp, store: CursorStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    idp.auth0 = fakes.auth0_logs(100)
    delivery = RecordingDelivery()
    clock = ShiftedClock()
    async with httpx.AsyncClient() as http:
        api = Auth0Api(idp.base_url, "client", "secret", page_size=50)
        first = _poller(Auth0LogClient(api, http, clock), fakes.auth0_mapper, delivery,
                        store, tmp_path, clock)  # fmt: skip
        await first.poll_page()
        saved = store.load("test")

        def crash(name: str, state: object) -> None:
            raise Crash

        monkeypatch.setattr(store, "save", crash)
        with pytest.raises(Crash):
            await first.poll_page()  # delivered, then the process died
        monkeypatch.undo()
        assert store.load("test") == saved
        restarted = _poller(Auth0LogClient(api, http, clock), fakes.auth0_mapper, delivery,
                            store, tmp_path, clock)  # fmt: skip
        await _run_until(restarted, lambda: restarted.state.caught_up_at is not None)
    expected = _mapped_ids(idp.auth0, fakes.auth0_mapper)
    second_page = _mapped_ids(idp.auth0[50:], fakes.auth0_mapper)
    assert delivery.ids == expected[:40] + second_page + second_page
    assert list(dict.fromkeys(delivery.ids)) == expected  # after the worker's dedupe
