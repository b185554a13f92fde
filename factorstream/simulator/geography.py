"""Where simulated people live: countries with time zones, public IP ranges and phones.

Each country's networks are ones the worker's offline geolocation (geoip2fast, see
``streams.enrich``) places in that country, and each code is in the worker's centroid
table (``streams/data/country_centroids.csv``), so an event's IP is enriched to the
country the model meant (``tests/unit/simulator`` checks both). UTC offsets are the
standard ones (no daylight saving: a simulation needs no more).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Country:
    code: str
    utc_offset_hours: float
    networks: tuple[str, ...]
    """/16 networks geolocated to this country."""
    mobile_example: str
    """A valid E.164 mobile number of the country; simulated numbers vary its last digits."""


COUNTRIES: dict[str, Country] = {
    c.code: c
    for c in (
        Country("US", -6, ("73.15.0.0/16", "73.162.0.0/16", "24.5.0.0/16"), "+12015550123"),
        Country("DE", 1, ("91.3.0.0/16", "91.40.0.0/16", "79.200.0.0/16"), "+4915123456789"),
        Country("GB", 0, ("86.140.0.0/16", "81.150.0.0/16"), "+447400123456"),
        Country("FR", 1, ("90.20.0.0/16", "86.200.0.0/16"), "+33612345678"),
        Country("IN", 5.5, ("117.200.0.0/16", "59.90.0.0/16"), "+918123456789"),
        Country("JP", 9, ("126.10.0.0/16", "153.200.0.0/16"), "+819012345678"),
        Country("BR", -3, ("177.100.0.0/16", "189.30.0.0/16"), "+5511961234567"),
        Country("AU", 10, ("1.120.0.0/16", "110.140.0.0/16"), "+61412345678"),
        Country("CA", -5, ("24.114.0.0/16", "70.48.0.0/16"), "+15062345678"),
        Country("ES", 1, ("83.50.0.0/16", "88.10.0.0/16"), "+34612345678"),
        Country("NL", 1, ("77.160.0.0/16", "84.80.0.0/16"), "+31612345678"),
        Country("SG", 8, ("116.86.0.0/16", "175.156.0.0/16"), "+6581234567"),
        Country("RU", 3, ("95.24.0.0/16", "95.28.0.0/16"), "+79123456789"),
        Country("CN", 8, ("36.100.0.0/16", "113.100.0.0/16"), "+8613123456789"),
        Country("NG", 1, ("105.112.0.0/16", "105.113.0.0/16"), "+2348021234567"),
        Country("VN", 7, ("113.160.0.0/16", "14.160.0.0/16"), "+84912345678"),
    )
}

WORKFORCE_COUNTRIES = {"US": 30, "DE": 20, "GB": 15, "FR": 8, "IN": 12, "CA": 6, "NL": 5, "SG": 4}
"""Where a workforce tenant's employees live (weights)."""
CUSTOMER_COUNTRIES = {"US": 35, "GB": 12, "DE": 12, "BR": 10, "ES": 8, "AU": 8, "JP": 8, "FR": 7}
"""Where a consumer tenant's customers live (weights)."""
ATTACKER_COUNTRIES = ("RU", "CN", "NG", "VN")
"""Where simulated attacks come from."""
PUMPING_COUNTRIES = ("NG", "VN", "RU", "CN")
"""Mobile destinations SMS pumpers buy codes to (never a consumer tenant's home market)."""


def weighted_choice(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def address_in(rng: random.Random, country: Country) -> str:
    """A host address in one of ``country``'s networks (never .0 or .255)."""
    network = ipaddress.ip_network(rng.choice(country.networks))
    offset = rng.randrange(256, network.num_addresses - 256)
    host = network.network_address + offset
    if str(host).endswith((".0", ".255")):
        host += 1
    return str(host)


def mobile_number(rng: random.Random, country: Country) -> str:
    """A mobile number of ``country`` (its example number with the last four digits varied)."""
    return f"{country.mobile_example[:-4]}{rng.randrange(10_000):04d}"


def far_country(home: str, *, rng: random.Random) -> Country:
    """A country at least a continent away from ``home`` (for impossible travel)."""
    far = {
        "US": ("AU", "JP", "SG", "IN", "RU"),
        "CA": ("AU", "JP", "SG", "IN"),
        "BR": ("JP", "AU", "SG", "CN"),
        "AU": ("US", "GB", "DE", "BR"),
        "JP": ("US", "BR", "GB", "DE"),
        "SG": ("US", "BR", "CA"),
        "IN": ("US", "BR", "CA"),
    }.get(home, ("AU", "JP", "SG", "US"))
    return COUNTRIES[rng.choice(far)]
