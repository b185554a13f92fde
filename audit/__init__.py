"""audit: the compliance ledger — a verifiable Merkle-tree audit trail (docs/design.md).

* :mod:`audit.ledger` — :class:`~audit.ledger.Ledger` (append, checkpoints, prove,
  consistency, verify, erase, rows) and :func:`~audit.ledger.open_ledger`;
* :mod:`audit.canonical` — the canonical entry bytes each leaf hashes (documented there);
* :mod:`audit.merkle` — RFC 9162 §2.1 tree, incremental frontier, PATH/PROOF;
* :mod:`audit.checkpoints` — Ed25519-signed tree heads, key files;
* :mod:`audit.shredding`, :mod:`audit.keyring` — per-subject AES-GCM data keys wrapped by
  the master key (crypto-shredding);
* :mod:`audit.integrity` — ``verify``: recompute everything, name the first bad entry;
* :mod:`audit.verify` — offline verification of proof files and checkpoints;
* :mod:`audit.proofs`, :mod:`audit.reading`, :mod:`audit.database`, :mod:`audit.tables`,
  ``audit/migrations`` — storage (SQLAlchemy Core + Alembic; SQLite or PostgreSQL);
* :mod:`audit.sink` — appending batches durably and publishing checkpoints (the sink runs
  in the stream engine: ``streams/sinks.py``);
* :mod:`audit.rows` — entries as the exports read them; :mod:`audit.export`,
  :mod:`audit.ocsf` — exports (JSON Lines, CSV, Parquet, OCSF).
"""
