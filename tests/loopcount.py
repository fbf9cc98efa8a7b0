"""Counting the event loop's iterations, for tests that check work is spread over them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class Iterations:
    """How many loop iterations have run since ``counting()`` started (a callback that
    reschedules itself runs once per iteration)."""

    def __init__(self) -> None:
        self.now = 0


@contextmanager
def counting() -> Iterator[Iterations]:
    loop = asyncio.get_running_loop()
    count = Iterations()
    handle: list[asyncio.Handle] = []

    def tick() -> None:
        count.now += 1
        handle[:] = [loop.call_soon(tick)]

    tick()
    try:
        yield count
    finally:
        handle[0].cancel()


def per_iteration(seen: list[int]) -> list[int]:
    """How many of ``seen`` (iteration numbers) fell in each iteration that saw any."""
    return [seen.count(i) for i in sorted(set(seen))]
