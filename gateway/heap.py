"""The long-running processes' heap, settled once they have started."""

from __future__ import annotations

import gc


def settle() -> None:
    """Put what the start made (modules, the app, its pools and caches) out of the cyclic
    collector's reach. Left in, every full collection walks all of it with the event loop
    stopped: 30-40 ms a time under write load, which is where the writes' p99 went
    (docs/benchmarks.md, "The collector's pauses"). What is frozen is never collected;
    it lives as long as the process anyway."""
    gc.collect()
    gc.freeze()
