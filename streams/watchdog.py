"""A thread that says where the worker's event loop is stuck, when it is.

Everything a worker does runs on one asyncio event loop: fetching from the Kafka client,
the folds, the lockout API, the stall watch (``InOrderConsumer.heal``). A synchronous call
that blocks it (a lock, a blocking read, a busy loop) stops all of that at once, and
nothing on the loop can notice or say so. In CI a worker was seen to fall silent that
way for a minute. :class:`LoopWatchdog` runs beside the loop, in its own thread: every
``period_s`` it asks the loop to note the time, and when the loop has not done so for
``after_s`` seconds it logs a warning with the stack the loop's thread is at, once per
``after_s`` while the block lasts, and once more when the loop turns again.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)


class LoopWatchdog:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        after_s: float,
        period_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loop, self.after_s, self.period_s, self.clock = loop, after_s, period_s, clock
        self.loop_thread = threading.get_ident()  # made on the loop's thread (see start)
        self.last_turn = clock()
        self.blocks = 0
        """Blocks reported so far."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, *, after_s: float, period_s: float = 1.0) -> LoopWatchdog:
        """Watch the running loop (call on it) until :meth:`stop`."""
        watchdog = cls(asyncio.get_running_loop(), after_s=after_s, period_s=period_s)
        watchdog._thread = threading.Thread(
            target=watchdog._watch, name="loop-watchdog", daemon=True
        )
        watchdog._thread.start()
        return watchdog

    def stop(self) -> None:
        self._stop.set()

    def _turned(self) -> None:
        self.last_turn = self.clock()

    def _watch(self) -> None:
        reported_at: float | None = None
        while not self._stop.wait(self.period_s):
            try:
                self.loop.call_soon_threadsafe(self._turned)
            except RuntimeError:  # the loop is closed: nothing left to watch
                return
            now = self.clock()
            blocked_s = now - self.last_turn
            if blocked_s < self.after_s + self.period_s:
                if reported_at is not None:
                    log.warning("the event loop turns again")
                    reported_at = None
                continue
            if reported_at is not None and now - reported_at < self.after_s:
                continue
            if reported_at is None:
                self.blocks += 1
            reported_at = now
            log.warning(
                "the event loop has not turned for %.0f s: nothing else in this worker runs "
                "meanwhile. Its thread is at:\n%s",
                blocked_s,
                self.stack(),
            )

    def stack(self) -> str:
        """Where the loop's thread is now."""
        frame = sys._current_frames().get(self.loop_thread)
        if frame is None:
            return "  (the loop's thread is gone)"
        return "".join(traceback.format_stack(frame))
