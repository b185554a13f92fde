"""Alerts to the SOC: derived events (``risk.detected``, ``lockout.applied``,
``ip.block.applied``) routed, grouped and delivered to webhooks, Slack, syslog and SIEMs.

Pure at the centre (:mod:`alerts.model`, :mod:`alerts.routes`, :mod:`alerts.grouping`,
:mod:`alerts.formats`, :mod:`alerts.signing`), I/O at the edges (:mod:`alerts.transports`,
:mod:`alerts.delivery`, :mod:`alerts.host`). Imports nothing of factorstream but
``schemas``; the front door passes an :class:`~alerts.config.AlertsConfig`. See
``docs/alerts.md``.
"""

from alerts.config import AlertsConfig, Destination, RetryPolicy, Route
from alerts.errors import AlertsError

__all__ = ["AlertsConfig", "AlertsError", "Destination", "RetryPolicy", "Route"]
