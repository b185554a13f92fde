"""The pure parts of the adapters' I/O: cursor files, time windows, rate-limit waits,
secret comparison and webhook batch parsing."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sources.cursors import AdapterBusy, CursorState, CursorStore, check_name
from sources.idp_http import (
    MAX_RATE_LIMIT_WAIT_S,
    MAX_TOKEN_LIFETIME_S,
    rate_limit_wait,
    token_lifetime,
)
from sources.pages import Window
from sources.webhooks import batch_records, secret_matches

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_a_saved_state_is_read_back_and_the_file_is_private(tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "cursors")
    assert store.load("acme") == CursorState()
    state = CursorState(
        position={"from": "900200"}, last_success_at=NOW, caught_up_at=NOW,
        newest_event_at=NOW - timedelta(minutes=3), last_error=None, delivered=42,
        unmapped={"not_mfa": 7},
    )  # fmt: skip
    store.save("acme", state)
    assert store.load("acme") == state
    assert stat.S_IMODE(store.path("acme").stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "cursors").iterdir()] == ["acme.cursor.json"]
    assert state.lag_s(NOW + timedelta(seconds=90)) == 90
    assert CursorState().lag_s(NOW) is None


def test_a_failed_save_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CursorStore(tmp_path)
    store.save("acme", CursorState(position={"from": "1"}))

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        store.save("acme", CursorState(position={"from": "2"}))
    monkeypatch.undo()
    assert store.load("acme").position == {"from": "1"}
    assert [p.name for p in tmp_path.iterdir()] == ["acme.cursor.json"]  # no temporary left


def test_one_poller_per_adapter(tmp_path: Path) -> None:
    store = CursorStore(tmp_path)
    with store.claim("acme"):
        with pytest.raises(AdapterBusy, match=f"process {os.getpid()}"), store.claim("acme"):
            pass
        with store.claim("other"):
            pass
    with store.claim("acme"):  # released on leaving
        pass


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "UPPER", "x" * 65, ".hidden", "a b"])
def test_adapter_names_cannot_leave_the_state_directory(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def _headers(**values: str) -> httpx.Headers:
    return httpx.Headers({k.replace("_", "-"): v for k, v in values.items()})


def test_rate_limit_waits_follow_each_providers_header() -> None:
    epoch = NOW.timestamp()
    assert rate_limit_wait(_headers(x_ratelimit_reset=str(int(epoch) + 7)), NOW) == 7  # Auth0
    assert rate_limit_wait(_headers(x_rate_limit_reset=str(int(epoch) + 30)), NOW) == 30  # Okta
    assert rate_limit_wait(_headers(retry_after="12"), NOW) == 12  # Graph
    date = format_datetime(NOW + timedelta(seconds=20), usegmt=True)
    assert rate_limit_wait(_headers(retry_after=date), NOW) == 20
    assert rate_limit_wait(_headers(x_ratelimit_reset=str(int(epoch) - 5)), NOW) == 0
    assert rate_limit_wait(_headers(retry_after="999999"), NOW) == MAX_RATE_LIMIT_WAIT_S
    for junk in ("soon", "nan", ""):
        assert rate_limit_wait(_headers(retry_after=junk), NOW) == 60
    assert rate_limit_wait(_headers(), NOW) == 60


@given(
    st.lists(st.lists(st.integers(0, 3), max_size=6), max_size=6),
    st.integers(1, 4),
)
def test_windows_deliver_each_record_once_whatever_the_pages(
    arrivals: list[list[int]], page: int
) -> None:
    """Records arrive in bursts, each no older than the last (many at one instant); each
    poll sweeps what is at or after the watermark, newest first, a page at a time."""
    log: list[tuple[datetime, str]] = []
    window = Window(NOW)
    delivered: list[str] = []
    clock = 0
    for burst in arrivals:
        for step in burst:
            clock += step
            log.append((NOW + timedelta(seconds=clock), f"r{len(log)}"))
        visible = sorted((r for r in log if r[0] >= window.watermark), reverse=True)
        for start in range(0, max(len(visible), 1), page):
            chunk = visible[start : start + page]
            new = [r for r in chunk if window.is_new(*r)]
            delivered += [key for _, key in new]
            window = window.seen(new)
        window = Window.from_json(window.finished().as_json())
    assert sorted(delivered) == sorted(key for _, key in log)
    assert len(delivered) == len(set(delivered))


def test_secrets_compare_exactly() -> None:
    assert secret_matches("Bearer abc", "Bearer abc")
    for given_ in (None, "", "Bearer ab", "Bearer abcd", "bearer abc", "Bearer abc "):
        assert not secret_matches(given_, "Bearer abc")
    assert not secret_matches("\udcff", "x")  # not UTF-8: still just a mismatch


def test_webhook_batches_are_arrays_objects_or_json_lines() -> None:
    assert batch_records(b'[{"a": 1}, {"b": 2}]', "auth0") == [{"a": 1}, {"b": 2}]
    assert batch_records(b'{"a": 1}', "auth0") == [{"a": 1}]
    lines = batch_records(b'{"a": 1}\n\nnope\n{"b": 2}\n', "auth0")
    assert lines[0] == {"a": 1} and lines[2] == {"b": 2}
    assert type(lines[1]).__name__ == "_NotJson"
    assert batch_records(json.dumps("x").encode(), "auth0") == ["x"]


def test_token_lifetimes_from_a_token_endpoint_are_bounded() -> None:
    assert token_lifetime(3600) == 3600
    assert token_lifetime(-5) == 0
    for huge in (10**400, 1e308, float("inf")):
        assert token_lifetime(huge) == MAX_TOKEN_LIFETIME_S
    for junk in (None, "3600", True, float("nan"), [3600]):
        assert token_lifetime(junk) is None
