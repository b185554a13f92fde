"""Identity providers' own risk verdicts, filed as the pipeline's ``risk.detected``.

An adapter (``sources``) turns a provider's verdict (Entra ID's ``riskLevelDuringSignIn``,
Okta's threat detections) into ``idp.risk.reported``; this rule files each one as a
``risk.detected`` of detection ``idp_reported`` for the same subject, so the anomalies
topic, the lake, the dashboard, the MFA service's assessment and the factor-reset
detection see it like one of ours. Stateless: one report, one detection (a report of level
``none`` is none); the provider's level is kept as the severity, its score is
:data:`SCORES` of that level, and the provider and its risk types are the evidence. The id
derives from the report's, so a report delivered twice is one detection.
"""

from __future__ import annotations

from typing import Final

from schemas import Event
from schemas import payloads as p
from schemas.fields import RiskLevel
from schemas.payloads import Detection
from streams.folds.signals import risk_detected

SCORES: Final = {
    RiskLevel.LOW: 30,
    RiskLevel.MEDIUM: 55,
    RiskLevel.HIGH: 80,
    RiskLevel.CRITICAL: 95,
}
"""The score of each level a provider reports (inside the band ``severity_for`` maps back to
the same level)."""
READS: Final = (p.IdpRiskReported,)


def reported_risks(event: Event) -> list[Event]:
    """The ``risk.detected`` a provider's verdict ``event`` is filed as (none for level
    ``none`` or any other event)."""
    report = event.data
    if not isinstance(report, p.IdpRiskReported):
        return []
    score = SCORES.get(report.level)
    if score is None:
        return []
    kinds = ", ".join(report.risk_types) or "no risk type given"
    return [
        risk_detected(
            event,
            Detection.IDP_REPORTED,
            score=score,
            summary=f"{report.provider} reported {report.level} risk ({kinds})",
            evidence={
                "provider": report.provider,
                "level": str(report.level),
                "risk_types": ",".join(report.risk_types),
            },
            related=[event.id],
            max_related=1,
        )
    ]
