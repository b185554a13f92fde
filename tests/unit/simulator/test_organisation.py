"""The seeded organisation: roles and tiers, a progressive rollout, homes the worker's
geolocation agrees with, phone numbers the OTP ceremony accepts."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from factorstream.simulator.behaviour import sign_in_times
from factorstream.simulator.geography import COUNTRIES, address_in, far_country, mobile_number
from factorstream.simulator.organisation import (
    CONSUMER,
    DEPARTMENTS,
    WORKFORCE,
    build_organisation,
    rollout_days,
)
from schemas.fields import Factor, PolicyTier
from streams.enrich import geoip2fast_countries, load_centroids
from streams.folds import haversine_km
from verifiers.destinations import check_destination

START = datetime(2026, 10, 1, tzinfo=UTC)


def test_the_same_seed_builds_the_same_organisation() -> None:
    one = build_organisation(seed=1, users=50, days=30, start=START)
    assert one == build_organisation(seed=1, users=50, days=30, start=START)
    other = build_organisation(seed=2, users=50, days=30, start=START)
    assert {p.subject for p in one.people}.isdisjoint({p.subject for p in other.people})


def test_roles_tiers_and_tenants() -> None:
    people = build_organisation(seed=1, users=200, days=30, start=START).people
    assert len({p.subject for p in people}) == 200
    tiers = {(p.tenant, p.role): p.tier for p in people}
    assert tiers == {
        (WORKFORCE, "admin"): PolicyTier.ADMIN,
        (WORKFORCE, "employee"): PolicyTier.BUSINESS,
        (CONSUMER, "customer"): PolicyTier.CUSTOMER,
    }
    assert all(p.primary is Factor.WEBAUTHN for p in people if p.role == "admin")
    assert all(p.phone for p in people if Factor.SMS in p.factors)
    assert {p.department for p in people if p.tenant == WORKFORCE} == set(DEPARTMENTS)


def test_the_rollout_goes_pilot_then_departments_then_everyone() -> None:
    days = 30
    people = build_organisation(seed=4, users=200, days=days, start=START).people
    pilot = [p for p in people if p.role == "admin" or p.department == "it"]
    assert pilot and all(p.rollout_day == 0 for p in pilot)
    assert rollout_days(days)["it"] == 0
    assert sorted(rollout_days(days).values()) == list(rollout_days(days).values())
    assert max(p.rollout_day for p in people if p.tenant == WORKFORCE) <= 0.6 * days
    customers = [p.rollout_day for p in people if p.tenant == CONSUMER]
    assert min(customers) >= 0.3 * days - 1 and max(customers) <= 0.75 * days
    assert len(Counter(p.rollout_day for p in people)) > 5  # progressive, not one big bang


def test_every_country_s_addresses_geolocate_there() -> None:
    countries, centroids, rng = geoip2fast_countries(), load_centroids(), random.Random(0)
    for country in COUNTRIES.values():
        assert country.code in centroids
        located = {countries(address_in(rng, country)) for _ in range(50)}
        assert located == {country.code}, country.code


@pytest.mark.parametrize("code", sorted(COUNTRIES))
def test_mobile_numbers_are_accepted_for_sms_in_their_country(code: str) -> None:
    rng = random.Random(code)
    for _ in range(20):
        _number, country = check_destination(mobile_number(rng, COUNTRIES[code]), Factor.SMS, None)
        assert country == code


def test_far_countries_are_an_impossible_trip_away() -> None:
    centroids, rng = load_centroids(), random.Random(0)
    for home in COUNTRIES:
        away = far_country(home, rng=rng).code
        distance = haversine_km(*centroids[home], *centroids[away])
        # the travel fold takes 1000 km off each centroid; the rest must beat a jet in 35 min
        assert (distance - 2000) / (35 / 60) > 900, (home, away)


def test_employees_sign_in_in_business_hours_of_their_time_zone() -> None:
    people = build_organisation(seed=2, users=100, days=30, start=START).people
    rng = random.Random(0)
    for person in (p for p in people if p.role == "employee"):
        offset = timedelta(hours=COUNTRIES[person.country].utc_offset_hours)
        for day in range(5):  # 2026-10-01 is a Thursday: weekdays and a weekend
            for moment in sign_in_times(rng, person, START + timedelta(days=day)):
                assert 8 <= ((moment + offset).hour + (moment + offset).minute / 60) <= 18
