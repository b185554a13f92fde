"""Enrichment: complete an event's client location from its IP address, best effort.

:func:`open_enricher` builds the worker's :class:`Enricher` (geoip2fast, the packaged
country centroids, the operator's city and ASN databases); the ingest stage passes every
good event through :meth:`Enricher.enrich` before the folds see it. Only public addresses
are looked up (:func:`public_address`). A value the event carries is never replaced; a
missing one comes from the first source that has it. Enrichment never raises: whatever
cannot be looked up is left as it came, and an event with nothing new is returned as it
came, the same object. Sources and precedence field by field: docs/enrichment.md.
"""

from __future__ import annotations

import bisect
import csv
import functools
import ipaddress
import logging
import math
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import maxminddb
from msgspec.structs import replace

from schemas import Event
from schemas.fields import Client, Geo

logger = logging.getLogger(__name__)

CENTROIDS_FILE: Final = "country_centroids.csv"
"""In ``streams/data/``: ``code,latitude,longitude,source`` rows, ``#`` comment lines."""
GEOIP2FAST_DATA_FILE: Final = "geoip2fast-ipv6.dat.gz"
"""geoip2fast's bundled country data for IPv4 and IPv6 (47 MB in memory, 0.2 s to load)."""
CITY_ACCURACY_LIMIT_KM: Final = 500
"""A database location with a larger accuracy radius places only the country."""
MAX_NAME: Final = 128
"""Longest region or city name the contract accepts (``Geo.region``, ``Geo.city``)."""

Centroids = Mapping[str, tuple[float, float]]


@dataclass(frozen=True, slots=True)
class IpLocation:
    """What a database knows of one address (each field validated against the contract)."""

    country: str | None = None
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    asn: int | None = None
    city_level: bool = False
    """The coordinates place the address in a city, not only in its country."""


CountryLookup = Callable[[str], str | None]
"""An address (normalised, public) to an ISO 3166-1 alpha-2 code, or None."""
LocationLookup = Callable[[str], IpLocation | None]
"""An address (normalised, public) to what a database knows of it, or None."""


@dataclass(frozen=True, slots=True)
class _Answers:
    """Every source's answer for one address."""

    country: str | None
    city: IpLocation | None
    asn: int | None


# -- sources ---------------------------------------------------------------------------


def load_centroids(path: Path | None = None) -> dict[str, tuple[float, float]]:
    """Country code to ``(latitude, longitude)``; the packaged table unless ``path``."""
    if path is None:
        text = resources.files("streams").joinpath("data", CENTROIDS_FILE).read_text("utf-8")
    else:
        text = path.read_text("utf-8")
    lines = (line for line in text.splitlines() if line and not line.startswith("#"))
    return {
        row["code"]: (float(row["latitude"]), float(row["longitude"]))
        for row in csv.DictReader(lines)
    }


def _import_geoip2fast() -> Any:
    """The geoip2fast module, without the environment changes its import makes.

    Importing it sets ``PYTHONWARNINGS=ignore`` (and ``PYTHONIOENCODING``) in
    ``os.environ``, which every child process would inherit: they are put back as they were.
    """
    saved = {name: os.environ.get(name) for name in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    try:
        import geoip2fast.geoip2fast
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return geoip2fast.geoip2fast


@functools.cache
def _geoip2fast(data_file: str) -> Any:
    """One geoip2fast reader per data file and process (0.2 s, 47 MB): the library keeps its
    tables in module globals, so a second instance would only replace them."""
    return _import_geoip2fast().GeoIP2Fast(geoip2fast_data_file=data_file)


def geoip2fast_countries(data_file: Path | None = None) -> CountryLookup:
    """The bundled offline country lookup (geoip2fast), loaded once per process.

    The data file is named by absolute path: given a bare name, geoip2fast would look in
    the working directory first.
    """
    if data_file is None:
        data_file = Path(_import_geoip2fast().__file__).parent / GEOIP2FAST_DATA_FILE
    reader = _geoip2fast(str(data_file.resolve()))

    def country(address: str) -> str | None:
        try:
            code = reader.lookup(address).country_code
        except Exception:  # a third-party lookup: best effort, never raise
            return None
        # "--" (private, not found), "" (invalid) and "ASIA" fall out here; continent codes
        # such as "EU" are refused later, against the centroid table
        return code if _is_country_code(code) else None

    return country


class MaxMindDatabase:
    """An operator's MaxMind-format database (GeoIP2/GeoLite2 City or ASN, or compatible).

    Opening fails loudly (a configured database that is missing or corrupt is a mistake);
    lookups never raise.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader = maxminddb.open_database(str(path))

    def locate(self, address: str) -> IpLocation | None:
        try:
            record = self._reader.get(address)
        except Exception:  # IPv6 in an IPv4-only database, a corrupt node: best effort
            return None
        return location_of(record) if isinstance(record, dict) else None

    def close(self) -> None:
        self._reader.close()


def location_of(record: Mapping[str, Any]) -> IpLocation:
    """The fields of a GeoIP2-format record, each checked against the contract (a value
    that does not fit is dropped, never trimmed into something else)."""
    country = _name(_get(record, "country", "iso_code"))
    city = _english(_get(record, "city"))
    subdivisions = record.get("subdivisions")
    region = _english(subdivisions[0]) if isinstance(subdivisions, list) and subdivisions else None
    latitude, longitude = (
        _coordinate(_get(record, "location", "latitude"), 90),
        _coordinate(_get(record, "location", "longitude"), 180),
    )
    if latitude is None or longitude is None:
        latitude = longitude = None
    radius = _get(record, "location", "accuracy_radius")
    asn = record.get("autonomous_system_number")
    return IpLocation(
        country=country if _is_country_code(country) else None,
        region=region,
        city=city,
        latitude=latitude,
        longitude=longitude,
        asn=asn
        if isinstance(asn, int) and not isinstance(asn, bool) and 0 <= asn < 2**32
        else None,
        city_level=latitude is not None
        and city is not None
        and not (_is_number(radius) and radius >= CITY_ACCURACY_LIMIT_KM),
    )


def _is_country_code(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 2 and value.isascii() and value.isupper()


def _get(record: Mapping[str, Any], *path: str) -> Any:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _english(place: Any) -> str | None:
    names = _get(place, "names") if isinstance(place, dict) else None
    return _name(names.get("en") if isinstance(names, dict) else None)


def _name(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_NAME else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _coordinate(value: Any, limit: float) -> float | None:
    return float(value) if _is_number(value) and -limit <= value <= limit else None


# -- the enricher ----------------------------------------------------------------------


def _ranges(*networks: str) -> tuple[list[int], list[int]]:
    """Sorted first and last addresses (as integers) of ``networks`` (none overlapping)."""
    parsed = sorted(ipaddress.ip_network(network) for network in networks)
    return [int(n.network_address) for n in parsed], [int(n.broadcast_address) for n in parsed]


_NOT_PUBLIC_V4: Final = _ranges(
    "0.0.0.0/8",  # "this" network
    "10.0.0.0/8",
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # documentation (TEST-NET-1)
    "192.168.0.0/16",
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",  # documentation (TEST-NET-3)
    "224.0.0.0/3",  # multicast, reserved, broadcast
)
_NOT_PUBLIC_V6: Final = _ranges(  # within 2000::/3, the only global unicast space
    "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, ...)
    "2001:db8::/32",  # documentation
    "2002::/16",  # 6to4: the address of a relay, not of the client
    "3fff::/20",  # documentation (RFC 9637)
)
_GLOBAL_UNICAST_V6: Final = ipaddress.ip_network("2000::/3")
_V6_GLOBAL_FIRST: Final = int(_GLOBAL_UNICAST_V6.network_address)
_V6_GLOBAL_LAST: Final = int(_GLOBAL_UNICAST_V6.broadcast_address)
_V4_MAPPED_PREFIX: Final = bytes(10) + b"\xff\xff"


def public_address(ip: str) -> str | None:
    """``ip`` ready for the databases (an IPv4-mapped IPv6 address as its IPv4 address), or
    None if it is not a public address or not an address at all.

    Public: IPv4 outside the special-purpose ranges (RFC 6890: private, shared, loopback,
    link-local, documentation, benchmarking, multicast, reserved); IPv6 in 2000::/3 outside
    its special-purpose ranges. Parsed with ``inet_pton`` (strict: no ``1.2.3`` shorthand,
    no zone index): under a microsecond, where ``ipaddress`` takes 10 to 30.
    """
    try:
        if ":" in ip:
            packed = socket.inet_pton(socket.AF_INET6, ip)
            if packed.startswith(_V4_MAPPED_PREFIX):
                packed = packed[12:]
                ip = socket.inet_ntop(socket.AF_INET, packed)
        else:
            packed = socket.inet_pton(socket.AF_INET, ip)
    except (OSError, ValueError, TypeError):
        return None
    value = int.from_bytes(packed, "big")
    if len(packed) == 16:
        if not _V6_GLOBAL_FIRST <= value <= _V6_GLOBAL_LAST:
            return None
        firsts, lasts = _NOT_PUBLIC_V6
    else:
        firsts, lasts = _NOT_PUBLIC_V4
    at = bisect.bisect_right(firsts, value) - 1
    return None if at >= 0 and value <= lasts[at] else ip


class Enricher:
    """Completes ``client.geo`` from the client's IP (the rules: docs/enrichment.md).

    Built once at the edge with its data sources; holds no clock and reads no environment.
    Results are kept in a least-recently-used cache of ``cache_size`` entries (0: none),
    keyed by IP address and the geo the event came with, so the many events of one sign-in
    cost one lookup.
    """

    def __init__(
        self,
        *,
        centroids: Centroids,
        countries: CountryLookup | None = None,
        city_db: LocationLookup | None = None,
        asn_db: LocationLookup | None = None,
        cache_size: int = 16_384,
    ) -> None:
        self._centroids = centroids
        self._countries = countries
        self._city_db = city_db
        self._asn_db = asn_db
        self._locate: Callable[[str, Geo | None], Geo | None] = (
            functools.lru_cache(maxsize=cache_size)(self._located) if cache_size else self._located
        )

    def enrich(self, event: Event) -> Event:
        """``event`` with its client (and push responder) located; never raises."""
        data = event.data
        client, responder = getattr(data, "client", None), getattr(data, "responder", None)
        if client is None and responder is None:
            return event
        try:
            changes = {
                name: found
                for name, party in (("client", client), ("responder", responder))
                if isinstance(party, Client) and (found := self.complete(party)) is not party
            }
            return replace(event, data=replace(data, **changes)) if changes else event
        except Exception as error:  # a bug must not stop the worker: forward the event as is
            # the error's type only: its message could hold the address (personal data)
            kind = type(error).__name__
            logger.warning("enrichment failed (%s); event %s forwarded as it came", kind, event.id)
            return event

    def complete(self, client: Client) -> Client:
        """``client`` with its geo completed; the same object when nothing was added."""
        geo = self._locate(client.ip, client.geo) if client.ip else None
        return client if geo is None else replace(client, geo=geo)

    def _located(self, ip: str, geo: Geo | None) -> Geo | None:
        """``geo`` completed for ``ip``, or None when nothing can be added."""
        address = public_address(ip)
        answers = self._look_up(address) if address else None
        if answers is None:
            return None
        given = geo or Geo()
        found = self._completed(given, answers)
        return None if found is given else found

    def _look_up(self, address: str) -> _Answers | None:
        city = self._city_db(address) if self._city_db else None
        asn_record = self._asn_db(address) if self._asn_db else None
        asn = asn_record.asn if asn_record is not None else None
        if asn is None and city is not None:
            asn = city.asn
        country = self._countries(address) if self._countries else None
        if country is None and city is None and asn is None:
            return None
        return _Answers(country, city, asn)

    def _completed(self, geo: Geo, answers: _Answers) -> Geo:
        city, known = answers.city, self._centroids
        changes: dict[str, Any] = {}
        country, country_source = geo.country, None
        if country is None:
            candidates = ((city.country if city else None, "mmdb"), (answers.country, "geoip"))
            for candidate, source in candidates:
                if candidate is not None and candidate in known:
                    country = changes["country"] = candidate
                    country_source = source
                    break
        place = city  # the city database's place, used only within the event's country
        if city is not None and None not in (city.country, country) and city.country != country:
            place = None
        if place is not None:
            for name in ("region", "city"):
                if getattr(geo, name) is None and getattr(place, name) is not None:
                    changes[name] = getattr(place, name)
        if geo.asn is None and answers.asn is not None:
            changes["asn"] = answers.asn
        if geo.latitude is None and geo.longitude is None:
            centroid = known.get(country) if country is not None else None
            if place is not None and place.city_level:
                changes.update(latitude=place.latitude, longitude=place.longitude, source="mmdb")
            elif centroid is not None:
                changes.update(latitude=centroid[0], longitude=centroid[1], source="centroid")
            elif geo.source is None and country_source is not None:
                changes["source"] = country_source
        return replace(geo, **changes) if changes else geo


def open_enricher(
    *, mmdb_path: Path | None = None, asn_mmdb_path: Path | None = None, cache_size: int = 16_384
) -> Enricher:
    """The worker's enricher: geoip2fast, the packaged centroids, the operator's databases."""
    return Enricher(
        centroids=load_centroids(),
        countries=geoip2fast_countries(),
        city_db=MaxMindDatabase(mmdb_path).locate if mmdb_path else None,
        asn_db=MaxMindDatabase(asn_mmdb_path).locate if asn_mmdb_path else None,
        cache_size=cache_size,
    )
