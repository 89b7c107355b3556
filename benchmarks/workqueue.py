"""Throughput of mn.workqueue: 100,000 trivial tasks over 1,000 signatures.

Run: python benchmarks/workqueue.py
"""

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mn.workqueue import WorkQueues  # noqa: E402

TASKS = 100_000
SIGNATURES = 1_000


async def trivial() -> None:
    pass


async def bench(sync_level: int) -> float:
    wq = WorkQueues(default_sync_level=sync_level)
    start = time.perf_counter()
    futures = [wq.submit(f"sig-{i % SIGNATURES}", trivial) for i in range(TASKS)]
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - start
    assert not wq.signatures()
    return elapsed


async def main() -> None:
    for sync_level in (1, 5):
        elapsed = await bench(sync_level)
        print(
            f"{TASKS:,} tasks over {SIGNATURES:,} signatures, sync_level={sync_level}: "
            f"{elapsed:.2f} s, {TASKS / elapsed:,.0f} tasks/s"
        )


if __name__ == "__main__":
    asyncio.run(main())
