"""Rate limits as an attacker tries them: many IPs one client, one IP many clients, a
forged X-Forwarded-For (over HTTP, and the buckets' arithmetic with a given time)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from verifiers.service.api import create_app
from verifiers.service.config import RateLimits
from verifiers.service.ratelimit import TokenBuckets, caller_ip, ip_bucket
from verifiers.service.server import open_parts

from .conftest import Clock, Service, service_config, start_server, stop_server


def serve(tmp_path: Path, clock: Clock, limits: RateLimits) -> Iterator[Service]:
    parts = open_parts(service_config(tmp_path, rate_limits=limits), clock=clock)
    running = start_server(create_app(parts))
    try:
        yield Service("127.0.0.1", running.port, parts, clock)
    finally:
        stop_server(running)


@pytest.fixture
def per_ip(tmp_path: Path, clock: Clock) -> Iterator[Service]:
    """3 requests per IP at once, then one every 100 s; clients unlimited."""
    yield from serve(
        tmp_path, clock, RateLimits(per_ip_per_s=0.01, per_ip_burst=3, per_client_per_s=0)
    )


@pytest.fixture
def per_client(tmp_path: Path, clock: Clock) -> Iterator[Service]:
    """3 requests per client at once, behind a trusted proxy on loopback; IPs unlimited."""
    yield from serve(
        tmp_path,
        clock,
        RateLimits(
            per_ip_per_s=0,
            per_client_per_s=0.01,
            per_client_burst=3,
            trusted_proxies=("127.0.0.0/8",),
        ),
    )


def test_one_ip_with_many_clients_is_limited_by_its_ip(per_ip: Service) -> None:
    tokens = [per_ip.client("acme") for _ in range(5)]
    answers = [per_ip.call("GET", "/v1/subjects/alice/factors", token=t) for t in tokens]

    assert [a.status for a in answers] == [404, 404, 404, 429, 429]
    assert answers[3].json["error"] == "rate_limited"
    assert int(answers[3].headers["retry-after"]) >= 1
    assert answers[3].headers["content-type"] == "application/problem+json"


def test_a_forged_x_forwarded_for_does_not_buy_a_new_ip(per_ip: Service) -> None:
    token = per_ip.client("acme")
    answers = [
        per_ip.call(
            "GET",
            "/v1/subjects/alice/factors",
            token=token,
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        for n in range(5)
    ]
    assert [a.status for a in answers] == [404, 404, 404, 429, 429]


def test_made_up_credentials_count_against_the_ip_too(per_ip: Service) -> None:
    answers = [
        per_ip.call("GET", "/v1/subjects/alice/factors", token=f"fsc_x{n}.y") for n in range(5)
    ]
    assert [a.status for a in answers] == [401, 401, 401, 429, 429]


def test_one_client_from_many_ips_is_limited_by_its_credential(per_client: Service) -> None:
    token = per_client.client("acme")
    other = per_client.client("acme")
    answers = [
        per_client.call(
            "GET",
            "/v1/subjects/alice/factors",
            token=token,
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        for n in range(5)
    ]
    fresh = per_client.call("GET", "/v1/subjects/alice/factors", token=other)

    assert [a.status for a in answers] == [404, 404, 404, 429, 429]
    assert fresh.status == 404  # another client's budget is its own


def test_behind_a_trusted_proxy_each_forwarded_ip_has_its_own_bucket(
    tmp_path: Path, clock: Clock
) -> None:
    limits = RateLimits(
        per_ip_per_s=0.01, per_ip_burst=1, per_client_per_s=0, trusted_proxies=("127.0.0.1/32",)
    )
    for service in serve(tmp_path, clock, limits):
        token = service.client("acme")
        first = [
            service.call(
                "GET",
                "/v1/subjects/a/factors",
                token=token,
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            for n in range(3)
        ]
        again = service.call(
            "GET",
            "/v1/subjects/a/factors",
            token=token,
            headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.0"},
        )
        assert [a.status for a in first] == [404, 404, 404]
        assert again.status == 429  # the left-most hop is the attacker's to write


def test_addresses_of_one_ipv6_64_share_a_bucket_behind_a_trusted_proxy(
    tmp_path: Path, clock: Clock
) -> None:
    """An attacker numbers requests from a fresh address of their /64 each time."""
    limits = RateLimits(
        per_ip_per_s=0.01, per_ip_burst=2, per_client_per_s=0, trusted_proxies=("127.0.0.1/32",)
    )
    for service in serve(tmp_path, clock, limits):
        token = service.client("acme")
        answers = [
            service.call(
                "GET",
                "/v1/subjects/a/factors",
                token=token,
                headers={"X-Forwarded-For": f"2001:db8:1:2::{n:x}"},
            )
            for n in range(1, 5)
        ]
        neighbour = service.call(
            "GET",
            "/v1/subjects/a/factors",
            token=token,
            headers={"X-Forwarded-For": "2001:db8:1:3::1"},
        )
        assert [a.status for a in answers] == [404, 404, 429, 429]
        assert neighbour.status == 404  # the next /64 is someone else


def test_the_bucket_of_an_address() -> None:
    assert ip_bucket("203.0.113.7") == "203.0.113.7"
    assert ip_bucket("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert ip_bucket("::ffff:203.0.113.7") == "203.0.113.7"  # IPv4 in IPv6 clothing
    assert ip_bucket("unknown") == "unknown"


def test_buckets_refill_at_their_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=2, max_keys=10)
    assert [buckets.take("k", 0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert buckets.take("k", 0.4) == pytest.approx(0.1)
    assert buckets.take("k", 1.0) == 0.0
    assert buckets.take("other", 1.0) == 0.0


def test_the_buckets_forget_the_longest_idle_keys_beyond_their_bound() -> None:
    buckets = TokenBuckets(rate=0.001, burst=1, max_keys=2)
    for key in ("a", "b", "c"):
        assert buckets.take(key, 0.0) == 0.0
    assert buckets.take("a", 0.0) == 0.0  # forgotten, so full again
    assert buckets.take("c", 0.0) > 0


def test_the_caller_ip_trusts_only_configured_proxies() -> None:
    proxies = [ipaddress.ip_network("10.0.0.0/8")]
    assert caller_ip("203.0.113.1", "1.2.3.4", proxies) == "203.0.113.1"
    assert caller_ip("10.0.0.5", "1.2.3.4, 10.0.0.9", proxies) == "1.2.3.4"
    assert caller_ip("10.0.0.5", "garbage", proxies) == "10.0.0.5"
    assert caller_ip("10.0.0.5", "1.2.3.4", []) == "10.0.0.5"
