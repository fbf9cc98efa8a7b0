"""Pins the asgiref internals hookway.gate.arelease_request_thread relies on: within a
request (a ThreadSensitiveContext), thread-sensitive calls run on an executor kept in
``SyncToAsync.context_to_thread_executor`` under the context in
``SyncToAsync.thread_sensitive_context``. If an asgiref upgrade moves them, these fail,
and an idle event-stream subscriber would silently keep its thread."""

from __future__ import annotations

import threading

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async

from hookway import gate

pytestmark = pytest.mark.django_db(transaction=True)


def current_thread() -> str:
    return threading.current_thread().name


async def test_a_requests_thread_is_given_back_and_a_later_call_gets_a_new_one() -> None:
    async with ThreadSensitiveContext():
        context = SyncToAsync.thread_sensitive_context.get()
        before = await sync_to_async(current_thread, thread_sensitive=True)()
        assert context in SyncToAsync.context_to_thread_executor

        await gate.arelease_request_thread()

        assert context not in SyncToAsync.context_to_thread_executor
        after = await sync_to_async(current_thread, thread_sensitive=True)()
    assert after != before
