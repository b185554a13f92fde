"""What the adapters' tests share: any JSON value, the ids a provider might give, how hard
to try, and what every result of a mapping must be."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from schemas import Event, decode, encode
from sources import Unmapped

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
"""Any JSON value (NaN aside: JSON has none)."""

ids = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
"""Printable ASCII without spaces: what a record id, a user id or a session id may be."""

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def all_events(results: Sequence[Event | Unmapped]) -> list[Event]:
    """The results, each an event that has been through the codec (none unmapped)."""
    events = []
    for result in results:
        assert not isinstance(result, Unmapped), result
        assert decode(encode(result)) == result
        events.append(result)
    return events


def assert_sound(results: Sequence[Event | Unmapped], provider: str) -> None:
    """Every result is an event the codec takes back unchanged, or unmapped with a reason."""
    for result in results:
        if isinstance(result, Unmapped):
            assert result.reason and result.detail and result.provider == provider
        else:
            assert decode(encode(result)) == result
