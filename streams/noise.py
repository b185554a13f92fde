"""Repeated log lines, limited: a worker whose broker is gone logged ~75 error lines a
second (aiokafka: "Unable connect to node", "Unable to update metadata", "Failed fetch
messages", …), which buries everything else and fills disks.

:class:`RepeatLimit` lets the first record of each kind (logger, level, message template)
through, then at most one every ``every_s`` seconds, which says how many like it were left
out. It is put on the Kafka client's loggers (:func:`limit_kafka_client_logs`); the
worker's own lines are never limited.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RepeatLimit(logging.Filter):
    def __init__(self, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self.every_s:
            self._seen[key] = (seen[0], seen[1] + 1)
            return False
        self._seen[key] = (now, 0)
        if seen is not None and seen[1]:
            record.msg = (
                f"{record.getMessage()} ({seen[1]} more like it in the last "
                f"{now - seen[0]:.0f} s not logged)"
            )
            record.args = ()
        return True


KAFKA_CLIENTS = ("aiokafka", "kafka")


def limit_kafka_client_logs(every_s: float = 30.0) -> RepeatLimit:
    """Put one :class:`RepeatLimit` on every logger of the Kafka clients (call after they
    are imported: filters apply to the logger a record is made on)."""
    limit = RepeatLimit(every_s)
    names = [
        name for name in logging.root.manager.loggerDict if name.split(".")[0] in KAFKA_CLIENTS
    ]
    for name in names:
        logging.getLogger(name).addFilter(limit)
    return limit
