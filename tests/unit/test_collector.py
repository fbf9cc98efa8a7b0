"""The garbage collector's set-up at startup (hookway.runtime.prepare_collector)."""

import dataclasses
import gc

import pytest

from hookway import runtime


def test_the_young_threshold_is_raised_and_the_older_ones_kept(python_gc_thresholds):
    runtime.raise_gen0_threshold(2000)
    assert gc.get_threshold() == (2000, 10, 10)


def test_a_higher_threshold_the_process_set_is_kept(python_gc_thresholds):
    gc.set_threshold(50_000, 20, 30)
    runtime.raise_gen0_threshold(2000)
    assert gc.get_threshold() == (50_000, 20, 30)


def test_0_leaves_the_collector_alone(python_gc_thresholds):
    runtime.raise_gen0_threshold(0)
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize(("setting", "expected"), [(5000, 5000), (0, 700)])
def test_startup_applies_the_setting_once_per_process(
    settings, monkeypatch, python_gc_thresholds, setting, expected
):
    settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, gc_gen0_threshold=setting)
    frozen = []
    monkeypatch.setattr(runtime, "_heap_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    runtime.prepare_collector()
    assert frozen == [True]
    assert gc.get_threshold() == (expected, 10, 10)
    # Once per process: a second startup (another lifespan) changes nothing.
    gc.set_threshold(700, 10, 10)
    runtime.prepare_collector()
    assert frozen == [True]
    assert gc.get_threshold() == (700, 10, 10)
