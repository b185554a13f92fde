"""Impossible travel: two successive successful sign-ins too far apart for the time between.

Rule (per subject): each completed sign-in whose ``client.geo`` has coordinates is
compared with the previous one that had them (sign-ins without coordinates neither fire
nor move the reference point; failed sign-ins are ignored). With ``d`` the great-circle
(haversine) distance, minus ``travel_imprecise_radius_km`` for each point whose
``geo.source`` is imprecise (a country centroid), and ``t`` the time between them but at
least ``travel_min_elapsed``: it fires when ``d >= travel_min_distance_km`` and
``d / t > travel_max_speed_kmh``. Two points in one country with an imprecise one among them
are never compared. Score 70 (high), 10 more per doubling of the speed over the limit, at
most 85 (VPNs make it noisy, so alone it never reaches critical). Cool-down: ``cooldown``
per subject; the reference point moves on with every located sign-in all the same.
The evidence names where the trip started (country and coordinates) next to the speed, so
the detection alone draws its arc on a map; the sign-in that fired it is the event's client.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas import Event
from schemas.payloads import Detection
from streams.folds import window as w
from streams.folds.signals import (
    SIGN_IN_COMPLETIONS,
    client_of,
    completed_sign_in,
    escalated,
    risk_detected,
)
from streams.folds.thresholds import DetectionThresholds

STATE_VERSION = 1
READS = SIGN_IN_COMPLETIONS
"""The payloads this fold reads; any other event leaves the state as it is (``is``)."""
EARTH_RADIUS_KM = 6371.0088
"""The mean Earth radius (IUGG)."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres between two points given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class SignInPoint:
    """Where and when a successful sign-in happened."""

    at: datetime
    latitude: float
    longitude: float
    event_id: str
    country: str | None = None
    imprecise: bool = False


@dataclass(frozen=True, slots=True)
class TravelState:
    """One subject's last located successful sign-in and last firing."""

    last: SignInPoint | None = None
    last_fired: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        last = self.last
        return {
            "version": STATE_VERSION,
            "last": None
            if last is None
            else {
                "at": w.isoformat(last.at),
                "latitude": last.latitude,
                "longitude": last.longitude,
                "event_id": last.event_id,
                "country": last.country,
                "imprecise": last.imprecise,
            },
            "last_fired": w.iso(self.last_fired),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TravelState:
        w.check_version(data, STATE_VERSION)
        last = data.get("last")
        point = None
        if last is not None:
            if not isinstance(last, Mapping):
                raise ValueError(f"last: expected an object or null, found {last!r}")
            coordinates = [last.get("latitude"), last.get("longitude")]
            if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coordinates):
                raise ValueError(f"last: expected numeric coordinates, found {coordinates!r}")
            if not isinstance(last.get("event_id"), str) or not isinstance(
                last.get("imprecise", False), bool
            ):
                raise ValueError(f"last: expected event_id and imprecise, found {dict(last)!r}")
            point = SignInPoint(
                at=w.parse_time(last.get("at"), "last.at"),
                latitude=float(last["latitude"]),
                longitude=float(last["longitude"]),
                event_id=last["event_id"],
                country=w.optional_str(last, "country"),
                imprecise=last.get("imprecise", False),
            )
        return cls(last=point, last_fired=w.optional_time(data, "last_fired"))


def _point(event: Event, thresholds: DetectionThresholds) -> SignInPoint | None:
    client = client_of(event)
    geo = client.geo if client is not None else None
    if geo is None or geo.latitude is None or geo.longitude is None:
        return None
    imprecise = geo.source in thresholds.travel_imprecise_sources
    return SignInPoint(event.time, geo.latitude, geo.longitude, event.id, geo.country, imprecise)


def fold_impossible_travel(
    state: TravelState, event: Event, thresholds: DetectionThresholds
) -> tuple[TravelState, list[Event]]:
    """Apply one event (see the module docstring for the rule)."""
    if not completed_sign_in(event):
        return state, []
    return impossible_travel_at_sign_in(state, event, thresholds)


def impossible_travel_at_sign_in(
    state: TravelState, event: Event, thresholds: DetectionThresholds
) -> tuple[TravelState, list[Event]]:
    """:func:`fold_impossible_travel` of an event known to complete a sign-in."""
    point = _point(event, thresholds)
    if point is None:
        return state, []
    previous, derived = state.last, []
    state = TravelState(point, state.last_fired)
    if previous is None:
        return state, []
    if previous.latitude == point.latitude and previous.longitude == point.longitude:
        return state, []  # no distance, no trip (the usual case: the same place again)
    imprecise = int(previous.imprecise) + int(point.imprecise)
    if imprecise and previous.country is not None and previous.country == point.country:
        return state, []
    distance = haversine_km(previous.latitude, previous.longitude, point.latitude, point.longitude)
    effective = max(0.0, distance - imprecise * thresholds.travel_imprecise_radius_km)
    elapsed = abs(point.at - previous.at)
    hours = max(elapsed, thresholds.travel_min_elapsed).total_seconds() / 3600
    speed = effective / hours
    limit = thresholds.travel_max_speed_kmh
    if effective < thresholds.travel_min_distance_km or speed <= limit:
        return state, []
    if not w.cooled(state.last_fired, event.time, thresholds.cooldown):
        return state, []
    score = escalated(70, speed, limit, top=85)
    route = f"{previous.country or '??'} to {point.country or '??'}"
    summary = (
        f"Successful sign-ins at least {effective:,.0f} km apart ({route}) within "
        f"{w.duration_text(elapsed)}: {speed:,.0f} km/h, above {limit:,.0f} km/h"
    )
    evidence = {
        "speed_kmh": round(speed, 1),
        "max_speed_kmh": limit,
        "distance_km": round(distance, 1),
        "uncertainty_km": round(distance - effective, 1),
        "elapsed_seconds": int(elapsed.total_seconds()),
        "from_country": previous.country,
        "from_latitude": previous.latitude,
        "from_longitude": previous.longitude,
        "to_country": point.country,
        "previous_sign_in_at": w.isoformat(previous.at),
    }
    derived.append(
        risk_detected(
            event,
            Detection.IMPOSSIBLE_TRAVEL,
            score=score,
            summary=summary,
            evidence=evidence,
            related=[previous.event_id, event.id],
            max_related=thresholds.max_related_events,
        )
    )
    return TravelState(point, event.time), derived
