"""dashboard: the Dash Pages app auditors and SOC analysts sign in to (password + TOTP).

``create_app(config)`` (:mod:`dashboard.app`; plain values: :mod:`dashboard.config`) wires
the sign-in gate (:mod:`dashboard.gate`,
:mod:`dashboard.auth`, :mod:`dashboard.users`), the metrics over the lake
(:mod:`dashboard.data` on ``analytics.queries``), the ledger (:mod:`dashboard.ledger` on
``audit``) and one module per page in ``dashboard/pages``; figures are pure functions in
:mod:`dashboard.figures`.
"""

from schemas.extras import require_extra

require_extra("dashboard")
