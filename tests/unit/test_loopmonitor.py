import asyncio
import json
import os
import time
from pathlib import Path

from hookway import conf
from hookway.loopmonitor import LoopLagMonitor, MonitorTask


def test_pid_in_the_lag_file_name_gives_each_worker_its_own_file():
    settings = conf.load({"HOOKWAY_LOOP_LAG_FILE": "/tmp/lag-{pid}.json", "DEBUG": "true"})
    assert settings.loop_lag_file == Path(f"/tmp/lag-{os.getpid()}.json")


async def test_a_blocking_call_on_the_loop_shows_up_as_lag(tmp_path):
    path = tmp_path / "lag.json"
    task = MonitorTask(path)
    task.start()
    await asyncio.sleep(0.1)
    time.sleep(0.15)  # noqa: ASYNC251 - the blocking call the monitor must catch
    await asyncio.sleep(0.05)
    await task.stop()

    summary = json.loads(path.read_text())
    assert summary["samples"] >= 5
    assert summary["max_ms"] >= 100
    assert summary["p50_ms"] < 100


def test_an_idle_monitor_reports_no_samples():
    assert LoopLagMonitor().summary() == {"samples": 0}
