"""compliance: evidence packs — SOC 2, HIPAA and GDPR questions answered from the ledger's
events, every row with an inclusion proof against a signed checkpoint (docs/design.md).

* :mod:`compliance.periods` — ``2026-Q3``, ``2026-11``, ``2026`` or explicit bounds;
* :mod:`compliance.controls` — the controls, pure functions over ledger rows;
* :mod:`compliance.pack` — writing a bundle: rows, proofs, checkpoints, keys, manifest;
* :mod:`compliance.report` — the human report (self-contained HTML);
* :mod:`compliance.offline_verify` — the bundle's ``verify.py`` (standard library plus
  ``cryptography`` only; copied into every bundle as it is).

Packs never open sealed personal data: the ledger is read without its master key, so a
sealed field reads as erased whether or not its subject was erased, and a subject erased
under GDPR Art. 17 is marked as such.
"""

from schemas.extras import require_extra

require_extra("compliance")
