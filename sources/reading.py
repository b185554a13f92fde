"""Reading untrusted JSON values: each reader returns the value when it is what the
contract can carry, else ``None`` (a record's optional field is then left out, not guessed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from schemas.fields import check_country, check_ip

_TOKEN = re.compile(r"[\x21-\x7e]{1,128}")


def token(value: Any) -> str | None:
    """A printable ASCII string without spaces, at most 128 long (ids, subjects)."""
    return value if isinstance(value, str) and _TOKEN.fullmatch(value) else None


def text(value: Any, max_length: int) -> str | None:
    """A non-empty string of at most ``max_length`` characters."""
    return value if isinstance(value, str) and 0 < len(value) <= max_length else None


def name(value: Any) -> str | None:
    """What the contract's ``Name`` fields take (1 to 128 characters)."""
    return text(value, 128)


def obj(value: Any) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, Mapping) else {}


def utc_time(value: Any) -> datetime | None:
    """An ISO 8601 time with an offset, in UTC; a time without one is not guessed."""
    if not isinstance(value, str):
        return None
    try:
        time = datetime.fromisoformat(value)
        return time.astimezone(UTC) if time.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None


def ip_address(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 45:
        return None
    try:
        check_ip("ip", value)
    except ValueError:
        return None
    return value


def country_code(value: Any) -> str | None:
    """An ISO 3166-1 alpha-2 code as the contract writes it (``DE``)."""
    if not isinstance(value, str) or len(value) != 2:
        return None
    try:
        check_country("country", value)
    except ValueError:
        return None
    return value


def degrees(value: Any, limit: float) -> float | None:
    """A number within ``[-limit, limit]`` (latitude 90, longitude 180)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if -limit <= value <= limit else None


_CAMEL_WORD = re.compile(r"([a-z0-9])([A-Z])")
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")
_SEPARATORS = re.compile(r"[\-.:/]+")
_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


def reason_code(value: Any) -> str | None:
    """A provider's code as the contract's snake_case reason: ``INVALID_CREDENTIALS`` →
    ``invalid_credentials``, ``anonymizedIPAddress`` → ``anonymized_ip_address``,
    ``user_not_found`` as it is; ``None`` for anything that does not become one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    words = _ACRONYM_WORD.sub(r"\1_\2", _CAMEL_WORD.sub(r"\1_\2", value))
    code = _SEPARATORS.sub("_", words.strip()).lower()
    return code if _REASON.fullmatch(code) else None
