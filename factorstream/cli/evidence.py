"""``factorstream evidence soc2|hipaa|gdpr``: an evidence pack an auditor can verify offline.

The pack is built from the ledger opened without its master key (personal data is never
unsealed), against a checkpoint signed now if the newest does not cover the period; its
digest is then recorded in the ledger as ``audit.evidence.issued``.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape

from audit.ledger import LedgerError
from compliance.controls import FRAMEWORKS, Framework
from compliance.pack import PackError, issued_event, write_pack
from compliance.periods import Period, PeriodError, between, parse_period
from factorstream.cli.audit import ledger_of
from factorstream.cli.context import console, fail, settings_of
from factorstream.retention_config import retention_report


def _period(period: str | None, since: str | None, until: str | None) -> Period:
    try:
        if period is not None:
            if since or until:
                raise PeriodError("give --period or --since/--until, not both")
            return parse_period(period)
        if since is None or until is None:
            raise PeriodError("give --period (e.g. 2026-Q3) or both --since and --until")
        return between(datetime.fromisoformat(since), datetime.fromisoformat(until))
    except ValueError as error:
        raise fail(str(error)) from None


PackDirectory = typer.Option(..., "--output", "-o", help="A new directory for the pack.")


def policy_in_force() -> dict[str, dict[str, str]]:
    """The verifiers' policy tiers as plain values, for the pack's policy.json."""
    from verifiers.policy import TIERS

    return {
        str(tier): {
            "required_factors": ", ".join(policy.required_factors),
            "fallback_factors": ", ".join(policy.fallback_factors),
            "max_failures": str(policy.max_failures),
            "lockout_duration": str(policy.lockout_duration),
            "max_wait": str(policy.max_wait),
            "lockout_strategy": str(policy.strategy),
            "permanent_after_lockouts": str(policy.max_temporary_lockouts or "never"),
            "failure_reset": str(policy.failure_reset),
            "otp_max_failures": str(policy.otp_max_failures),
            "code_lifetime": str(policy.code_lifetime),
        }
        for tier, policy in TIERS.items()
    }


def evidence(
    ctx: typer.Context,
    framework: str = typer.Argument(..., help="soc2, hipaa or gdpr."),
    output: Path = PackDirectory,
    period: str | None = typer.Option(None, help="2026-Q3, 2026-11 or 2026 (UTC)."),
    since: str | None = typer.Option(None, help="Start, inclusive (ISO 8601, UTC if bare)."),
    until: str | None = typer.Option(None, help="End, exclusive (ISO 8601, UTC if bare)."),
    tenant: str | None = typer.Option(None, help="Only this tenant (default: all)."),
    issued_by: str | None = typer.Option(
        None, help="Who the pack is issued by (recorded in the ledger; default: the OS user)."
    ),
) -> None:
    """Build an evidence pack: controls answered, every row proven, a verify.py inside."""
    if framework not in FRAMEWORKS:
        raise fail(f"framework must be one of {', '.join(FRAMEWORKS)}, not {framework!r}")
    chosen: Framework = framework
    window = _period(period, since, until)
    now = datetime.now(UTC)
    retention = (
        retention_report(settings_of(ctx), now, kafka_timeout=5) if chosen == "gdpr" else None
    )
    ledger = ledger_of(ctx, sign=True)  # signs a covering checkpoint; never unseals
    try:
        ledger.tick(now=now, force=True)
        pack = write_pack(
            ledger,
            framework=chosen,
            period=window,
            tenant=tenant,
            out=output,
            now=now,
            policy=policy_in_force(),
            retention=retention,
        )
        ledger.append([issued_event(pack, issued_by=issued_by or getpass.getuser(), now=now)],
                      now=now)  # fmt: skip
    except (PackError, LedgerError, OSError) as error:
        raise fail(str(error)) from None
    for control in pack.controls:
        console.print(
            f"{escape(control.control):28} {control.status:14} "
            f"{len(control.exceptions)} exceptions, {len(control.rows)} rows"
        )
    console.print(
        f"wrote [bold]{escape(str(output))}[/] ({pack.files} files); digest {pack.digest} "
        "recorded in the ledger as audit.evidence.issued; check it with "
        f"`python {escape(str(output / 'verify.py'))}`"
    )
