"""Where the engine's producer puts a keyed record (streams/produce.py)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner

from streams.produce import partition_for


def test_a_key_goes_where_aiokafkas_default_partitioner_puts_it() -> None:
    """The subjects stage folds an event in place only when its key's partition is the one
    it was read from: the engine's rule must be the producers' (murmur2), or a subject's
    state would be split between two partitions."""
    rng = random.Random(5)
    keys = [
        b"acme/u-1",
        b"",
        b"\xff" * 7,
        *(rng.randbytes(rng.randrange(1, 60)) for _ in range(500)),
    ]
    default = DefaultPartitioner()
    for key in keys:
        for count in (1, 2, 6, 12, 50):
            everything = list(range(count))
            assert partition_for(key, count) == default(key, everything, everything)
