"""What an adapter could not (or would not) turn into one of our events, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unmapped:
    """A provider's record that became no event: kept and counted, never dropped silently.

    ``reason`` is machine-readable (snake_case): ``not_mfa`` (a type outside MFA),
    ``no_contract_type`` / ``contract_gap`` (MFA, but the contract cannot say it without
    inventing what the provider does not say), ``outcome_not_mapped`` (a mapped type with an
    outcome that becomes no event), ``batch`` (a delivery of several records: each is mapped
    on its own), or a defect of the record itself (``not_an_object``, ``missing_log_id`` /
    ``missing_record_id``, ``missing_type``, ``invalid_date``, ``missing_status``,
    ``missing_subject``, ``invalid_record``). ``detail`` says it for people.
    """

    provider: str
    record_id: str | None
    record_type: str | None
    reason: str
    detail: str

    def as_json(self) -> dict[str, str | None]:
        return {
            "provider": self.provider,
            "record_id": self.record_id,
            "record_type": self.record_type,
            "reason": self.reason,
            "detail": self.detail,
        }
