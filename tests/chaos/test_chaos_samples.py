"""What the fault run samples while it goes on (bench/chaos_samples.py): a worker's figures from its metrics
page, and CPU time from the real ``/proc`` of this machine."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.chaos_samples import Sampler, cpu_seconds, machine_ticks, worker_figures

PAGE = """# HELP shouwang_worker_readings_processed_total Meter readings that passed validation.
# TYPE shouwang_worker_readings_processed_total counter
shouwang_worker_readings_processed_total 1234.0
shouwang_worker_states_held 3.0
shouwang_worker_consumer_lag_records{partition="2",topic="t.readings"} 17.0
shouwang_worker_consumer_lag_records{partition="0",topic="t.readings"} 0.0
shouwang_worker_consumer_lag_records{partition="0",topic="t.incidents"} 99.0
"""


def test_a_worker_s_figures_are_read_from_its_metrics_page() -> None:
    assert worker_figures(PAGE, "t.readings") == {"processed": 1234.0, "lag": {"0": 0, "2": 17}, "held": 3}
    assert worker_figures("", "t.readings") == {"processed": 0.0, "lag": {}, "held": 0}


def _burn() -> None:
    total = 0
    for n in range(3_000_000):
        total += n * n
    assert total > 0


def test_cpu_time_is_counted_per_process_and_not_across_a_restart() -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert cpu_seconds(int(gone.stdout)) is None and cpu_seconds(None) is None
    before = cpu_seconds(os.getpid())
    busy, total = machine_ticks()
    assert before is not None and 0 < busy < total
    sampler = Sampler(origin=0.0, readings_topic="t.readings")
    first = sampler.sample(1.0, {"worker-1": PAGE, "worker-2": None}, {"run": os.getpid(), "worker-1": None})
    assert first["cpu_s"] == {"run": None, "worker-1": None}  # nothing to count from yet
    assert first["workers"]["worker-1"]["lag"] == {"0": 0, "2": 17} and first["workers"]["worker-2"] is None
    _burn()
    second = sampler.sample(6.0, {}, {"run": os.getpid()})
    assert second["t"] == 6.0 and second["cpu_s"]["run"] > 0.05
    assert second["machine_busy"] is not None and 0 < second["machine_busy"] <= 1
    with subprocess.Popen(["sleep", "30"]) as restarted:  # another process under the name: no figure yet
        assert sampler.sample(11.0, {}, {"run": restarted.pid})["cpu_s"] == {"run": None}
        assert 0.0 <= sampler.sample(16.0, {}, {"run": restarted.pid})["cpu_s"]["run"] < 0.05
        restarted.kill()
    assert sampler.sample(21.0, {}, {"run": int(gone.stdout)})["cpu_s"] == {"run": None}  # gone
