"""analytics: the Parquet lake SOC teams query with DuckDB.

``tables``/``columns`` flatten events into the lake's tables; ``lake`` writes complete,
hive-partitioned files idempotently by event id; ``compaction`` merges small files
atomically for readers; ``views`` gives DuckDB views over the files (and the read-only
``analytics.duckdb``); ``queries`` holds the named metric queries; ``sink`` compacts the lake
on a timer (the lake sink itself runs in the stream engine: ``streams/sinks.py``).
"""

from schemas.extras import require_extra

require_extra("analytics")
