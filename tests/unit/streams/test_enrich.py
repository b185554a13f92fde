"""Enrichment: geoip2fast countries, the operator's .mmdb, centroids, precedence, robustness."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmdb_writer import MmdbU32, MMDBWriter
from msgspec.structs import force_setattr, replace
from netaddr import IPSet

from schemas import Event, decode, encode
from schemas import payloads as p
from schemas.fields import Client, Geo
from streams.enrich import (
    CENTROIDS_FILE,
    Enricher,
    IpLocation,
    MaxMindDatabase,
    geoip2fast_countries,
    load_centroids,
    location_of,
    open_enricher,
    public_address,
)
from tests.factories import PAYLOADS, sample_event

ROOT = Path(__file__).resolve().parents[3]
CENTROIDS = load_centroids()
LONDON = {
    "city": {"geoname_id": 2643743, "names": {"en": "London", "de": "London"}},
    "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
    "location": {"latitude": 51.5142, "longitude": -0.0931, "accuracy_radius": 10},
    "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
    "autonomous_system_number": MmdbU32(20712),
}
FRANKFURT = {
    "city": {"names": {"en": "Frankfurt am Main"}},
    "country": {"iso_code": "DE"},
    "location": {"latitude": 50.1109, "longitude": 8.6821, "accuracy_radius": 20},
    "subdivisions": [{"names": {"en": "Hesse"}}],
}
US_ONLY = {  # how GeoLite2 City answers when it knows only the country
    "country": {"iso_code": "US"},
    "location": {"latitude": 37.751, "longitude": -97.822, "accuracy_radius": 1000},
}
JUNK = {  # every field of the wrong type or out of the contract's range
    "city": {"names": {"en": "x" * 129}},
    "country": {"iso_code": "germany"},
    "location": {"latitude": "north", "longitude": 1e9, "accuracy_radius": -1},
    "subdivisions": "Hesse",
    "autonomous_system_number": -5,
}
CITY_NETWORKS = {
    "81.2.69.0/24": LONDON,  # MaxMind's own test network
    "2a00:1450:4001::/48": FRANKFURT,
    "8.8.8.0/24": US_ONLY,
    "193.0.0.0/21": {"country": {"iso_code": "EU"}},  # a continent, not a country
    "9.9.9.0/24": JUNK,
}
ASN_NETWORKS = {
    "81.2.69.0/24": (20712, "Andrews & Arnold Ltd"),
    "8.8.8.0/24": (15169, "GOOGLE"),
    "2a00:1450::/32": (15169, "GOOGLE"),
}


def build_city_mmdb(path: Path) -> Path:
    """A small GeoIP2-City-format database with the networks of ``CITY_NETWORKS``."""
    writer = MMDBWriter(
        ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City", languages=["en"]
    )
    for network, record in CITY_NETWORKS.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


def build_asn_mmdb(path: Path) -> Path:
    """A small GeoLite2-ASN-format database with the networks of ``ASN_NETWORKS``."""
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN")
    for network, (number, name) in ASN_NETWORKS.items():
        writer.insert_network(
            IPSet([network]),
            {"autonomous_system_number": MmdbU32(number), "autonomous_system_organization": name},
        )
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def mmdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mmdb")


@pytest.fixture(scope="module")
def city_db(mmdb_dir: Path) -> MaxMindDatabase:
    return MaxMindDatabase(build_city_mmdb(mmdb_dir / "city.mmdb"))


@pytest.fixture(scope="module")
def asn_db(mmdb_dir: Path) -> MaxMindDatabase:
    return MaxMindDatabase(build_asn_mmdb(mmdb_dir / "asn.mmdb"))


@pytest.fixture(scope="module")
def offline() -> Enricher:
    """geoip2fast and the centroids only: what the worker does with no database configured."""
    return Enricher(centroids=CENTROIDS, countries=geoip2fast_countries())


@pytest.fixture(scope="module")
def full(city_db: MaxMindDatabase, asn_db: MaxMindDatabase) -> Enricher:
    return Enricher(
        centroids=CENTROIDS,
        countries=geoip2fast_countries(),
        city_db=city_db.locate,
        asn_db=asn_db.locate,
    )


def signed_in_from(ip: str | None, geo: Geo | None = None, **client: Any) -> Event:
    """A successful verification from ``ip`` with the given (partial) geo."""
    event = sample_event("mfa.verification.succeeded")
    return replace(event, data=replace(event.data, client=Client(ip=ip, geo=geo, **client)))


def geo_of(event: Event) -> Geo | None:
    client = event.data.client
    assert isinstance(client, Client)
    return client.geo


def assert_valid(event: Event) -> None:
    assert decode(encode(event)) == event


# -- the offline data: geoip2fast 1.2.2 (GeoLite2 2024-06-18) ---------------------------


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),  # Google Public DNS
        ("9.9.9.9", "US"),  # Quad9
        ("208.67.222.222", "US"),  # OpenDNS
        ("1.1.1.1", "AU"),  # Cloudflare's anycast 1.1.1.0/24 is registered to APNIC (AU)
        ("193.0.6.139", "NL"),  # RIPE NCC, Amsterdam
        ("81.2.69.142", "GB"),  # MaxMind's own test address
        ("212.58.244.20", "GB"),  # BBC
        ("200.160.2.3", "BR"),  # NIC.br
        ("2001:4860:4860::8888", "US"),  # Google Public DNS over IPv6
        ("2606:4700:4700::1111", "US"),  # Cloudflare over IPv6 (here not AU)
        ("2a00:1450:4001:80b::200e", "DE"),  # a Google front end in Frankfurt
    ],
)
def test_geoip2fast_knows_the_country_of_well_known_addresses(ip: str, country: str) -> None:
    assert geoip2fast_countries()(ip) == country


@pytest.mark.parametrize("ip", ["10.1.2.3", "127.0.0.1", "203.0.113.7", "2001:db8::1", "junk", ""])
def test_geoip2fast_answers_nothing_for_private_unknown_or_junk_addresses(ip: str) -> None:
    assert geoip2fast_countries()(ip) is None


def test_the_bundled_asn_data_names_networks_but_has_no_numbers(offline: Enricher) -> None:
    """Why ``geo.asn`` comes only from an operator's ASN database.

    geoip2fast's ASN file says ``GOOGLE`` for 8.8.8.8 and ``CLOUDFLARENET`` for 1.1.1.1 and
    has no AS number anywhere; ``Geo.asn`` is the number. (Run apart: loading that file
    replaces the tables geoip2fast keeps in module globals.)
    """
    script = (
        "import os, geoip2fast.geoip2fast as g\n"
        "path = os.path.join(os.path.dirname(g.__file__), 'geoip2fast-asn-ipv6.dat.gz')\n"
        "reader = g.GeoIP2Fast(geoip2fast_data_file=path)\n"
        "for ip in ('8.8.8.8', '1.1.1.1'):\n"
        "    found = reader.lookup(ip)\n"
        "    print(found.country_code, repr(found.asn_name), found.asn_cidr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == [
        "US 'GOOGLE' 8.8.8.0/24",
        "AU 'CLOUDFLARENET' 1.1.1.0/24",
    ]
    geo = geo_of(offline.enrich(signed_in_from("8.8.8.8")))
    assert geo is not None and geo.asn is None


def test_importing_geoip2fast_leaves_the_environment_alone() -> None:
    """geoip2fast sets PYTHONWARNINGS=ignore as it is imported; child processes would
    inherit it. The enricher puts the environment back."""
    script = (
        "import os\n"
        "from streams.enrich import geoip2fast_countries\n"
        "assert geoip2fast_countries()('8.8.8.8') == 'US'\n"
        "print(os.environ.get('PYTHONWARNINGS'), os.environ.get('PYTHONIOENCODING'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
        env=env,
    )
    assert result.stdout.strip() == "None None"


# -- what the enricher adds, and in which order -----------------------------------------


def test_a_public_address_gets_its_country_and_the_country_centroid(offline: Enricher) -> None:
    event = signed_in_from("8.8.8.8")
    enriched = offline.enrich(event)

    latitude, longitude = CENTROIDS["US"]
    assert geo_of(enriched) == Geo(
        country="US", latitude=latitude, longitude=longitude, source="centroid"
    )
    assert_valid(enriched)
    assert enriched.data.client.ip == "8.8.8.8"
    assert (enriched.id, enriched.type, enriched.time) == (event.id, event.type, event.time)


def test_ipv6_and_ipv4_mapped_addresses_are_looked_up(offline: Enricher) -> None:
    six = geo_of(offline.enrich(signed_in_from("2a00:1450:4001:80b::200e")))
    mapped = geo_of(offline.enrich(signed_in_from("::ffff:193.0.6.139")))
    assert six is not None and (six.country, six.source) == ("DE", "centroid")
    assert mapped is not None and (mapped.country, mapped.source) == ("NL", "centroid")


def test_values_the_service_supplied_are_never_replaced(full: Enricher) -> None:
    supplied = Geo(
        country="DE", city="Berlin", latitude=52.52, longitude=13.405, asn=3320, source="client"
    )
    event = signed_in_from("81.2.69.142", supplied)  # the databases say London, AS20712
    assert full.enrich(event) is event  # nothing missing, nothing added


def test_the_service_country_wins_and_a_database_place_elsewhere_is_not_used(
    full: Enricher,
) -> None:
    event = signed_in_from("81.2.69.142", Geo(country="FR", source="client"))
    geo = geo_of(full.enrich(event))

    latitude, longitude = CENTROIDS["FR"]
    assert geo == Geo(
        country="FR", latitude=latitude, longitude=longitude, asn=20712, source="centroid"
    )


def test_service_coordinates_are_kept_with_their_source(full: Enricher) -> None:
    event = signed_in_from("81.2.69.142", Geo(latitude=48.85, longitude=2.35, source="client"))
    geo = geo_of(full.enrich(event))
    assert geo == Geo(
        country="GB",
        region="England",
        city="London",
        latitude=48.85,
        longitude=2.35,
        asn=20712,
        source="client",
    )


def test_a_lone_latitude_gets_no_longitude_from_elsewhere(offline: Enricher) -> None:
    geo = geo_of(offline.enrich(signed_in_from("8.8.8.8", Geo(latitude=10.0))))
    assert geo == Geo(country="US", latitude=10.0)


def test_the_city_database_supplies_city_region_coordinates_and_asn(full: Enricher) -> None:
    enriched = full.enrich(signed_in_from("81.2.69.142"))
    assert geo_of(enriched) == Geo(
        country="GB",
        region="England",
        city="London",
        latitude=51.5142,
        longitude=-0.0931,
        asn=20712,
        source="mmdb",
    )
    assert_valid(enriched)
    ipv6 = geo_of(full.enrich(signed_in_from("2a00:1450:4001:80b::200e")))
    assert ipv6 == Geo(
        country="DE",
        region="Hesse",
        city="Frankfurt am Main",
        latitude=50.1109,
        longitude=8.6821,
        asn=15169,
        source="mmdb",
    )


def test_an_ipv4_mapped_address_finds_its_ipv4_network_in_the_database(full: Enricher) -> None:
    geo = geo_of(full.enrich(signed_in_from("::ffff:81.2.69.142")))
    assert geo is not None and (geo.city, geo.source) == ("London", "mmdb")


def test_country_level_database_coordinates_fall_back_to_the_centroid(full: Enricher) -> None:
    """GeoLite2 answers 37.751,-97.822 (radius 1000 km) for an address it places only in the
    US; taken as precise it would make impossible-travel fire on every US sign-in."""
    geo = geo_of(full.enrich(signed_in_from("8.8.8.8")))
    latitude, longitude = CENTROIDS["US"]
    assert geo == Geo(
        country="US", latitude=latitude, longitude=longitude, asn=15169, source="centroid"
    )


def test_a_continent_code_is_not_a_country(full: Enricher) -> None:
    geo = geo_of(full.enrich(signed_in_from("193.0.6.139")))  # the database says EU
    assert geo is not None and (geo.country, geo.source) == ("NL", "centroid")  # geoip2fast


def test_database_values_outside_the_contract_are_dropped(full: Enricher) -> None:
    enriched = full.enrich(signed_in_from("9.9.9.9"))
    latitude, longitude = CENTROIDS["US"]
    assert geo_of(enriched) == Geo(
        country="US", latitude=latitude, longitude=longitude, source="centroid"
    )
    assert_valid(enriched)
    assert location_of({"location": {"latitude": math.nan, "longitude": 1.0}}) == IpLocation()


def test_the_asn_database_wins_over_the_city_record(
    city_db: MaxMindDatabase, mmdb_dir: Path
) -> None:
    writer = MMDBWriter(ip_version=4, database_type="GeoLite2-ASN")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {"autonomous_system_number": MmdbU32(64500)})
    writer.to_db_file(str(mmdb_dir / "other-asn.mmdb"))
    enricher = Enricher(
        centroids=CENTROIDS,
        city_db=city_db.locate,
        asn_db=MaxMindDatabase(mmdb_dir / "other-asn.mmdb").locate,
    )
    geo = geo_of(enricher.enrich(signed_in_from("81.2.69.142")))
    assert geo is not None and geo.asn == 64500
    # an IPv6 address in that IPv4-only database: maxminddb raises, the enricher does not
    ipv6 = geo_of(enricher.enrich(signed_in_from("2a00:1450:4001:80b::200e")))
    assert ipv6 is not None and (ipv6.city, ipv6.asn) == ("Frankfurt am Main", None)


def test_a_push_responder_is_located_too(offline: Enricher) -> None:
    approved = sample_event("mfa.push.approved")
    data = replace(approved.data, client=Client(ip="10.0.0.7"), responder=Client(ip="8.8.8.8"))
    enriched = offline.enrich(replace(approved, data=data))

    assert isinstance(enriched.data, p.PushApproved)
    assert enriched.data.client == Client(ip="10.0.0.7")  # private: untouched
    assert enriched.data.responder is not None and enriched.data.responder.geo is not None
    assert enriched.data.responder.geo.country == "US"
    assert_valid(enriched)


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "172.16.5.4",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.0.1",  # carrier-grade NAT
        "169.254.1.1",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.7",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_private_reserved_and_loopback_addresses_get_nothing(full: Enricher, ip: str) -> None:
    event = signed_in_from(ip)
    assert full.enrich(event) is event
    assert public_address(ip) is None


@pytest.mark.parametrize("type_name", sorted(PAYLOADS))
def test_every_sample_event_passes_unchanged(offline: Enricher, type_name: str) -> None:
    event = sample_event(type_name)  # the samples' client IP is a documentation address
    assert offline.enrich(event) is event


def test_an_event_without_client_or_ip_is_the_same_object(offline: Enricher) -> None:
    no_client = sample_event("mfa.recovery.regenerated")
    no_ip = signed_in_from(None, user_agent="curl/8")
    assert offline.enrich(no_client) is no_client
    assert offline.enrich(no_ip) is no_ip


def test_the_input_event_is_not_changed(full: Enricher) -> None:
    event = signed_in_from("81.2.69.142", Geo(country="GB"))
    wire = encode(event)
    enriched = full.enrich(event)
    assert enriched != event
    assert encode(event) == wire
    assert decode(wire) == event


# -- robustness ---------------------------------------------------------------------------

ADDRESSES = st.one_of(
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}"),
    st.sampled_from(["8.8.8.8", "81.2.69.142", "9.9.9.9", "193.0.6.139", "2a00:1450:4001::1"]),
)
NAMES = st.text(min_size=1, max_size=128)
GEOS = st.none() | st.builds(
    Geo,
    country=st.none() | st.sampled_from(["DE", "US", "GB", "FR", "EU", "ZZ"]),
    region=st.none() | NAMES,
    city=st.none() | NAMES,
    latitude=st.none() | st.floats(-90, 90),
    longitude=st.none() | st.floats(-180, 180),
    asn=st.none() | st.integers(0, 2**32 - 1),
    source=st.none() | st.sampled_from(["client", "gps", "centroid"]),
)


@settings(max_examples=300, deadline=None)
@given(ip=ADDRESSES, geo=GEOS)
def test_enrichment_never_raises_keeps_supplied_values_and_validates(
    full: Enricher, ip: str, geo: Geo | None
) -> None:
    event = signed_in_from(ip, geo)
    wire = encode(event)

    enriched = full.enrich(event)

    assert encode(event) == wire  # the input is untouched
    assert_valid(enriched)
    after = geo_of(enriched)
    if geo is not None:
        assert after is not None
        for name in ("country", "region", "city", "latitude", "longitude", "asn"):
            if getattr(geo, name) is not None:
                assert getattr(after, name) == getattr(geo, name)
        if geo.latitude is not None or geo.longitude is not None:
            assert after.source == geo.source
    address = public_address(ip)
    if address is None:
        assert enriched is event
    elif geo is None and geoip2fast_countries()(address) in CENTROIDS:
        assert after is not None and after.latitude is not None  # enriched, not swallowed
    assert full.enrich(enriched) is enriched  # idempotent: a replay adds nothing more


NOT_PUBLIC_BEYOND_PYTHON = [  # special-purpose ranges ipaddress (3.11) counts as global
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("2002::/16"),  # 6to4 relays
    ipaddress.ip_network("3fff::/20"),  # documentation (RFC 9637, 2024)
]


@settings(max_examples=2000)
@given(address=st.ip_addresses())
def test_public_addresses_are_the_global_unicast_ones(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """``public_address`` (inet_pton and a range table) agrees with ``ipaddress``."""
    mapped = getattr(address, "ipv4_mapped", None)
    looked_up = mapped or address
    expected = (
        looked_up.is_global
        and not looked_up.is_multicast
        and not any(looked_up in network for network in NOT_PUBLIC_BEYOND_PYTHON)
        and (looked_up.version == 4 or looked_up in ipaddress.ip_network("2000::/3"))
    )
    assert public_address(str(address)) == (str(looked_up) if expected else None)


@given(junk=st.text(max_size=60) | st.binary(max_size=20).map(lambda b: b.decode("latin-1")))
def test_junk_in_place_of_an_address_never_raises(offline: Enricher, junk: str) -> None:
    """A client IP the contract would refuse (set behind its back) passes through as well."""
    event = signed_in_from("8.8.8.8")
    force_setattr(event.data.client, "ip", junk)
    enriched = offline.enrich(event)
    assert enriched is event or public_address(junk) is not None
    found = geoip2fast_countries()(junk)
    assert found is None or (len(found) == 2 and found.isupper())


def test_junk_addresses_in_the_databases_answer_nothing(city_db: MaxMindDatabase) -> None:
    for junk in ("junk", "", "1.2.3", "::ffff:999.1.1.1", "8.8.8.8/24", "\x00"):
        assert city_db.locate(junk) is None


def test_a_failing_source_leaves_the_event_as_it_came(caplog: pytest.LogCaptureFixture) -> None:
    def broken(address: str) -> str | None:
        raise RuntimeError("database went away")

    event = signed_in_from("8.8.8.8")
    with caplog.at_level(logging.WARNING, logger="streams.enrich"):
        assert Enricher(centroids=CENTROIDS, countries=broken).enrich(event) is event
    assert event.id in caplog.text
    assert "8.8.8.8" not in caplog.text  # the log names the event, never the address


# -- the per-address cache ----------------------------------------------------------------


def _counting() -> tuple[Callable[[str], str | None], list[str]]:
    calls: list[str] = []

    def country(address: str) -> str | None:
        calls.append(address)
        return "DE"

    return country, calls


@pytest.mark.parametrize(("cache_size", "lookups"), [(16, 2), (0, 4)])
def test_lookups_are_cached_per_address(cache_size: int, lookups: int) -> None:
    country, calls = _counting()
    enricher = Enricher(centroids=CENTROIDS, countries=country, cache_size=cache_size)
    for ip in ("8.8.8.8", "8.8.8.8", "8.8.8.8", "9.9.9.9"):
        geo = geo_of(enricher.enrich(signed_in_from(ip)))
        assert geo is not None and geo.country == "DE"
    assert len(calls) == lookups


# -- the packaged centroid table and the front door --------------------------------------


def _iso_3166_codes() -> set[str]:
    """Every ISO 3166-1 alpha-2 code, from the tz database's iso3166.tab (Debian tzdata)."""
    table = Path("/usr/share/zoneinfo/iso3166.tab")
    if not table.is_file():
        pytest.fail("no /usr/share/zoneinfo/iso3166.tab: install Debian's tzdata")
    lines = table.read_text().splitlines()
    return {line.split("\t")[0] for line in lines if line and not line.startswith("#")}


def test_the_centroid_table_covers_every_iso_country_with_valid_points() -> None:
    codes = _iso_3166_codes()
    assert len(codes) == 249
    assert set(CENTROIDS) == codes | {"XK"}
    for code, (latitude, longitude) in CENTROIDS.items():
        assert -90 <= latitude <= 90 and -180 <= longitude <= 180, code
        assert_valid(
            signed_in_from(None, Geo(country=code, latitude=latitude, longitude=longitude))
        )
    header = (ROOT / "streams" / "data" / CENTROIDS_FILE).read_text().split("\ncode,")[0]
    for needed in ("CC BY 4.0", "geoBoundaries", "360info", "Public domain", "tz database"):
        assert needed in header


def test_open_enricher_refuses_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_enricher(mmdb_path=tmp_path / "missing.mmdb")


def test_open_enricher_reads_the_operators_databases(mmdb_dir: Path) -> None:
    enricher = open_enricher(
        mmdb_path=build_city_mmdb(mmdb_dir / "front-door-city.mmdb"),
        asn_mmdb_path=build_asn_mmdb(mmdb_dir / "front-door-asn.mmdb"),
    )
    geo = geo_of(enricher.enrich(signed_in_from("81.2.69.142")))
    assert geo is not None and (geo.city, geo.asn, geo.source) == ("London", 20712, "mmdb")
