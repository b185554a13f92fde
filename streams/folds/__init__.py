"""Pure folds of the stream processors: risk detections over factorstream events.

No faust, Kafka, DuckDB, ``os.environ`` or clock here: a fold is
``fold(state, event, thresholds) -> (state, derived events)``, time is the event's, states
are frozen dataclasses with ``to_dict``/``from_dict`` (JSON builtins, for Faust tables).
Every detection emits ``risk.detected`` with a deterministic id (``schemas.derive_event``).

Thresholds: :class:`~streams.folds.thresholds.DetectionThresholds`. Wiring:
:data:`~streams.folds.detections.DETECTION_TABLES` (one table per key). Each detection,
its key and its module: docs/detections.md#the-detections-their-keys-and-modules.
"""

from streams.folds.cloning import CloningState, fold_cloned_authenticator
from streams.folds.detections import (
    BY_IP,
    BY_SUBJECT,
    BY_TENANT,
    DETECTION_TABLES,
    DetectionTable,
    SubjectDetections,
    fold_detections,
)
from streams.folds.familiarity import FamiliarityState, fold_new_country, fold_new_device
from streams.folds.fatigue import PushFatigueState, fold_push_fatigue
from streams.folds.guessing import (
    OtpGuessingState,
    RecoveryAbuseState,
    fold_otp_guessing,
    fold_recovery_code_abuse,
)
from streams.folds.pumping import SmsPumpingState, fold_sms_pumping
from streams.folds.reputation import ReputationState, fold_ip_reputation
from streams.folds.reset import FactorResetState, fold_factor_reset_after_risk
from streams.folds.signals import SOURCE, sms_pumping_key, spray_key, subject_key
from streams.folds.spray import SprayState, fold_password_spray
from streams.folds.thresholds import DetectionThresholds, NetworkList
from streams.folds.travel import TravelState, fold_impossible_travel, haversine_km

__all__ = [
    "BY_IP",
    "BY_SUBJECT",
    "BY_TENANT",
    "DETECTION_TABLES",
    "SOURCE",
    "CloningState",
    "DetectionThresholds",
    "FactorResetState",
    "FamiliarityState",
    "DetectionTable",
    "NetworkList",
    "OtpGuessingState",
    "PushFatigueState",
    "RecoveryAbuseState",
    "ReputationState",
    "SmsPumpingState",
    "SprayState",
    "SubjectDetections",
    "TravelState",
    "fold_cloned_authenticator",
    "fold_detections",
    "fold_factor_reset_after_risk",
    "fold_impossible_travel",
    "fold_ip_reputation",
    "fold_new_country",
    "fold_new_device",
    "fold_otp_guessing",
    "fold_password_spray",
    "fold_push_fatigue",
    "fold_recovery_code_abuse",
    "fold_sms_pumping",
    "haversine_km",
    "sms_pumping_key",
    "spray_key",
    "subject_key",
]
