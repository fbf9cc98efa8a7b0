"""Ingest's source cache (hookway.gate.aget_source): one lookup per slug at a time,
read again in the background before it expires, never served older than
SOURCE_CACHE_SECONDS, and a change made in this process never overwritten by a lookup
that began before it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from hookway import gate
from hookway.models import Source
from hookway.store import events
from hookway.store.errors import StoreTimeout

pytestmark = pytest.mark.django_db(transaction=True)


class GatedLookups:
    """events.get_source, counted, each call held until ``release()``."""

    def __init__(self) -> None:
        self.read_first = False  # read the row, then wait (instead of wait, then read)
        self.calls = 0
        self.started = threading.Event()
        self._go = threading.Event()
        self._real = events.get_source

    def __call__(self, slug: str) -> events.SourceSpec | None:
        self.calls += 1
        self.started.set()
        first = self.read_first
        read = self._real(slug) if first else None
        assert self._go.wait(10), "the test never released the lookup"
        return read if first else self._real(slug)

    def release(self) -> None:
        self._go.set()


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedLookups]:
    lookups = GatedLookups()
    monkeypatch.setattr(events, "get_source", lookups)
    yield lookups
    lookups.release()  # a test that failed half-way must not leave the reader thread held


async def _stalled_after_reading(gated: GatedLookups) -> asyncio.Task[Any]:
    """A webhook's lookup of "demo" that has read the row as it is now, and is held."""
    gated.read_first = True
    lookup = asyncio.create_task(gate.aget_source("demo"))
    assert await asyncio.to_thread(gated.started.wait, 5)
    await asyncio.sleep(0.1)  # the lookup has read the row
    gated.read_first = False
    return lookup


async def _set_limit(source: Source, limit: int) -> None:
    """Change the source's row without clearing this process's cache (as another
    process would)."""
    await sync_to_async(Source.objects.filter(pk=source.pk).update)(max_body_bytes=limit)


async def _age(slug: str, seconds: float) -> None:
    """Make the cached entry for ``slug`` look read ``seconds`` ago."""
    hit = gate._sources[slug]
    gate._sources[slug] = hit._replace(read_at=time.monotonic() - seconds)


async def test_concurrent_webhooks_share_one_lookup(
    source: Callable[..., Any], gated: GatedLookups
):
    await source("demo")
    waiting = [asyncio.create_task(gate.aget_source("demo")) for _ in range(20)]
    await asyncio.sleep(0.1)
    gated.release()
    specs = await asyncio.gather(*waiting)
    assert gated.calls == 1
    assert {spec.slug for spec in specs if spec is not None} == {"demo"}
    assert all(spec is not None for spec in specs)


async def test_a_source_due_for_refresh_is_served_while_it_is_read_again(
    source: Callable[..., Any], gated: GatedLookups
):
    created = await source("demo", max_body_bytes=1000)
    gated.release()
    assert (await gate.aget_source("demo")).max_body_bytes == 1000  # type: ignore[union-attr]
    gated._go.clear()
    gated.started.clear()
    await _set_limit(created, 2000)
    await _age("demo", gate.SOURCE_REFRESH_SECONDS + 0.05)

    started = time.monotonic()
    spec = await gate.aget_source("demo")
    assert time.monotonic() - started < 0.5, "a webhook waited for the refresh"
    assert spec is not None
    assert spec.max_body_bytes == 1000
    assert await asyncio.to_thread(gated.started.wait, 5), "no refresh was started"
    again = await gate.aget_source("demo")  # one refresh in flight: no second one
    assert again is not None
    assert again.max_body_bytes == 1000
    gated.release()
    for _ in range(100):
        spec = await gate.aget_source("demo")
        if spec is not None and spec.max_body_bytes == 2000:
            break
        await asyncio.sleep(0.02)
    assert spec is not None
    assert spec.max_body_bytes == 2000
    assert gated.calls == 2


async def test_an_expired_source_is_never_served(source: Callable[..., Any], gated: GatedLookups):
    await source("demo")
    gated.release()
    await gate.aget_source("demo")
    gated._go.clear()
    await _age("demo", gate.SOURCE_CACHE_SECONDS + 0.05)
    with pytest.raises(StoreTimeout):
        await gate.aget_source("demo", time.monotonic() + 0.2)
    gated.release()
    assert await gate.aget_source("demo") is not None


async def test_a_webhook_that_stops_waiting_leaves_the_lookup_to_the_others(
    source: Callable[..., Any], gated: GatedLookups
):
    await source("demo")
    patient = asyncio.create_task(gate.aget_source("demo", time.monotonic() + 5))
    with pytest.raises(StoreTimeout):
        await gate.aget_source("demo", time.monotonic() + 0.1)
    gated.release()
    spec = await patient
    assert spec is not None
    assert spec.slug == "demo"
    assert gated.calls == 1


async def test_a_lookup_begun_before_a_change_caches_nothing(
    source: Callable[..., Any], gated: GatedLookups
):
    created = await source("demo", max_body_bytes=1000)
    before = await _stalled_after_reading(gated)
    # The change, made in this process, clears the cache while the lookup is in flight.
    await _set_limit(created, 2000)
    gate.clear_source_cache()
    gated.release()
    old = await before  # whoever waited gets the answer read before the change
    assert old is not None
    assert old.max_body_bytes == 1000
    assert "demo" not in gate._sources, "a lookup begun before the change was cached"
    spec = await gate.aget_source("demo")
    assert spec is not None
    assert spec.max_body_bytes == 2000
    assert gated.calls == 2


async def test_a_failing_lookup_is_not_cached_and_the_next_webhook_tries_again(
    source: Callable[..., Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    await source("demo")
    real = events.get_source
    calls = 0

    def flaky(slug: str) -> events.SourceSpec | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the reader broke")
        return real(slug)

    monkeypatch.setattr(events, "get_source", flaky)
    with pytest.raises(RuntimeError):
        await gate.aget_source("demo")
    assert "demo" not in gate._sources
    assert any("looking up source 'demo' failed" in r.getMessage() for r in caplog.records)
    spec = await gate.aget_source("demo")
    assert spec is not None
    assert calls == 2


async def test_a_lookup_stalled_past_the_cache_time_is_not_joined(
    source: Callable[..., Any], gated: GatedLookups
):
    created = await source("demo", max_body_bytes=1000)
    stalled = await _stalled_after_reading(gated)
    # Changed by another process meanwhile; the stalled lookup began long enough ago that
    # what it read may be older than a webhook may be served.
    await _set_limit(created, 2000)
    lookup = gate._lookups["demo"]
    gate._lookups["demo"] = lookup._replace(began=lookup.began - gate.SOURCE_CACHE_SECONDS)
    later = asyncio.create_task(gate.aget_source("demo"))
    await asyncio.sleep(0.1)
    gated.release()
    old, fresh = await stalled, await later
    assert old is not None
    assert old.max_body_bytes == 1000
    assert fresh is not None
    assert fresh.max_body_bytes == 2000, "a webhook joined a lookup begun too long ago"
    assert gated.calls == 2
