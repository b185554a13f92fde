"""Where codes go: phone numbers (E.164) and e-mail addresses, checked and masked.

Errors say what is wrong with a destination and never repeat it. Numbers that cannot
receive the factor (fixed lines for SMS) or that cost the sender (premium-rate,
shared-cost, toll-free, UAN, voicemail: the SMS-pumping targets) are refused.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from schemas.fields import Factor
from verifiers.store import VerifierError

PHONE_FACTORS = frozenset({Factor.SMS, Factor.VOICE})
CODE_FACTORS = frozenset({Factor.SMS, Factor.VOICE, Factor.EMAIL})
REFUSED_NUMBER_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "premium-rate",
    PhoneNumberType.SHARED_COST: "shared-cost",
    PhoneNumberType.TOLL_FREE: "toll-free",
    PhoneNumberType.UAN: "universal access",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class UnsupportedFactor(VerifierError, ValueError):
    """A factor other than sms, voice or email was asked of this module."""


class InvalidDestination(VerifierError, ValueError):
    """A phone number or e-mail address that cannot receive codes; says what is wrong."""


def normalise_phone(number: str, *, region: str | None = None, factor: Factor = Factor.SMS) -> str:
    """``number`` in E.164 (``+4915123456789``); national forms need ``region`` (e.g. DE)."""
    return _phone_destination(number, region, otp_factor(factor))[0]


def normalise_email(address: str) -> str:
    """``address`` with its domain in lower-case ASCII (IDNA); refused if malformed."""
    if not isinstance(address, str):
        raise InvalidDestination(f"e-mail address: expected text, got {type(address).__name__}")
    address = address.strip()
    if len(address) > 254:
        raise InvalidDestination("e-mail address is longer than 254 characters")
    if not address.isprintable() or any(ch.isspace() for ch in address):
        raise InvalidDestination("e-mail address contains spaces or control characters")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidDestination("e-mail address: expected local-part@domain")
    if len(local) > 64:
        raise InvalidDestination("e-mail local part is longer than 64 characters")
    if not _LOCAL_PART.match(local):
        raise InvalidDestination(
            "e-mail local part: expected letters, digits and !#$%&'*+/=?^_`{|}~.- "
            "(no leading, trailing or double dots; no non-ASCII characters)"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidDestination("e-mail domain is not a valid host name") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise InvalidDestination("e-mail domain: expected a host name with a dot, like example.com")
    if labels[-1].isdigit():
        raise InvalidDestination("e-mail domain: expected a host name, not an IP address")
    return f"{local}@{ascii_domain}"


def mask_destination(destination: str) -> str:
    """What events and screens show: ``+49*********89`` or ``j***@example.com``."""
    if destination.startswith("+"):
        number = phonenumbers.parse(destination)
        national = str(number.national_number)
        return f"+{number.country_code}{'*' * max(len(national) - 2, 0)}{national[-2:]}"
    local, _, domain = destination.rpartition("@")
    return f"{local[:1]}***@{domain}"


def _phone_destination(number: str, region: str | None, factor: Factor) -> tuple[str, str | None]:
    """(E.164, ISO country or None) of ``number``, or :class:`InvalidDestination`."""
    if factor not in PHONE_FACTORS:
        raise UnsupportedFactor(f"phone numbers take factor sms or voice, not {factor}")
    if not isinstance(number, str):
        raise InvalidDestination(f"phone number: expected text, got {type(number).__name__}")
    if region is not None:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise InvalidDestination(
                f"unknown region {region[:8]!r}: expected an ISO 3166-1 alpha-2 code like 'DE'"
            )
    try:
        parsed = phonenumbers.parse(number, region)
    except NumberParseException as error:
        raise InvalidDestination(_parse_problem(error, number, region)) from None
    region_of_number = phonenumbers.region_code_for_number(
        parsed
    ) or phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    where = (
        f"region {region_of_number}"
        if _is_country(region_of_number)
        else f"country code +{parsed.country_code}"
    )
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == ValidationResult.TOO_SHORT:
        raise InvalidDestination(f"phone number is too short for {where}")
    if possible == ValidationResult.TOO_LONG:
        raise InvalidDestination(f"phone number is too long for {where}")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidDestination(f"not a valid number for {where}")
    kind = phonenumbers.number_type(parsed)
    if kind in REFUSED_NUMBER_TYPES:
        raise InvalidDestination(
            f"{REFUSED_NUMBER_TYPES[kind]} numbers cannot receive verification codes"
        )
    if factor is Factor.SMS and kind == PhoneNumberType.FIXED_LINE:
        raise InvalidDestination("a fixed-line number cannot receive SMS (use factor voice)")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    country = phonenumbers.region_code_for_number(parsed)
    return e164, country if _is_country(country) else None


def _is_country(region: str | None) -> bool:
    """True for ISO 3166-1 alpha-2 codes; False for "001" (non-geographic) and "ZZ"."""
    return region is not None and region != "ZZ" and len(region) == 2 and region.isalpha()


def _parse_problem(error: NumberParseException, number: str, region: str | None) -> str:
    kind = error.error_type
    if kind == NumberParseException.INVALID_COUNTRY_CODE:
        if region is None and not number.lstrip().startswith(("+", "00")):
            return "phone number has no country code: write +<country code> or pass region="
        return "phone number has an unknown country calling code"
    if kind in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
        return "phone number is too short"
    if kind == NumberParseException.TOO_LONG:
        return "phone number is too long"
    return "phone number is not a number"


def check_destination(
    destination: str, factor: Factor, region: str | None
) -> tuple[str, str | None]:
    """The normalised destination for ``factor`` and its country (InvalidDestination)."""
    if factor in PHONE_FACTORS:
        return _phone_destination(destination, region, factor)
    return normalise_email(destination), None


def destination_country(destination: str) -> str | None:
    if not destination.startswith("+"):
        return None
    country = phonenumbers.region_code_for_number(phonenumbers.parse(destination))
    return country if _is_country(country) else None


# -- enrollment --------------------------------------------------------------------------


def otp_factor(factor: object) -> Factor:
    """``factor`` as a code-by-message factor (sms, voice, email), else UnsupportedFactor."""
    if isinstance(factor, str) and factor in CODE_FACTORS:
        return Factor(factor)
    raise UnsupportedFactor(f"expected factor sms, voice or email, got {factor!r}")
