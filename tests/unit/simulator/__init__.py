"""Tests of the traffic simulator; :mod:`tests.unit.simulator.pipeline` replays its events
through the stream's pure folds."""
