"""Trace readers on the real public traces in ../shared/traces, and the generic CSV readers on small files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from broker.errors import InputError
from broker.model import parse
from plugins.sim import offline
from plugins.sim.offline import Job, read_jobs_csv
from plugins.sim.online import COPY_SHIFT_S, TraceSeries, read_alibaba2018, read_usage_csv, tile
from plugins.sim.scenario import Scenario, default_scenario

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "traces"
USAGE_2018 = TRACES / "alibaba2018" / "machine_usage_16machines.csv"
BATCH_2017 = TRACES / "alibaba2017" / "batch_task_2017_full.csv"
FULL_MACHINES = 14  # m_1933..m_1946 cover the whole trace; m_1932 and m_1947 are partial (traces/README.md)

needs_traces = pytest.mark.skipif(not TRACES.is_dir(), reason=f"public traces not present at {TRACES}")


def scenario(**changes: Any) -> Scenario:
    """The default scenario with top-level fields replaced, validated like a file would be."""
    return parse(Scenario, default_scenario().model_dump(mode="json") | changes)


@pytest.fixture(scope="module")
def machines() -> list[TraceSeries]:
    if not TRACES.is_dir():
        pytest.skip(f"public traces not present at {TRACES}")
    return read_alibaba2018(USAGE_2018)


@pytest.fixture(scope="module")
def batch_jobs() -> list[Job]:
    if not TRACES.is_dir():
        pytest.skip(f"public traces not present at {TRACES}")
    replay = scenario(days=1, offline={"source": "alibaba2017", "path": str(BATCH_2017)})
    return offline.generate(replay, fleet_cpu_milli=1_000_000, base=None)


# --- Alibaba 2018 machine usage -----------------------------------------------------------------------------------


@needs_traces
def test_alibaba2018_has_sixteen_machines(machines: list[TraceSeries]) -> None:
    assert len(machines) == 16
    assert [m.name for m in machines] == [f"m_{i}" for i in range(1932, 1948)]


@needs_traces
def test_alibaba2018_usage_is_fractions_of_capacity(machines: list[TraceSeries]) -> None:
    for m in machines:
        assert m.cpu.min() >= 0.0 and m.cpu.max() <= 1.0
        assert m.memory.min() >= 0.0 and m.memory.max() <= 1.0
    assert np.mean([m.cpu.mean() for m in machines]) > 0.05  # percent was divided by 100 once, not twice


@needs_traces
def test_alibaba2018_samples_are_in_time_order(machines: list[TraceSeries]) -> None:
    for m in machines:
        assert np.all(np.diff(m.times) >= 0)
        assert len(m.times) == len(m.cpu) == len(m.memory)


@needs_traces
def test_tile_has_one_column_per_node_and_one_row_per_step(machines: list[TraceSeries]) -> None:
    cpu, memory = tile(machines, n_nodes=30, steps=500, step_s=60)
    assert cpu.shape == memory.shape == (500, 30)
    assert cpu.dtype == np.float32
    assert cpu.min() >= 0.0 and cpu.max() <= 1.0


@needs_traces
def test_tile_replays_only_machines_covering_the_whole_trace(machines: list[TraceSeries]) -> None:
    cpu, _ = tile(machines, n_nodes=FULL_MACHINES + 1, steps=2000, step_s=10)
    first_full = machines[1]
    start = min(float(m.times[0]) for m in machines)
    at = start + np.arange(2000) * 10.0
    expected = first_full.cpu[np.clip(np.searchsorted(first_full.times, at, side="right") - 1, 0, None)]
    np.testing.assert_array_equal(cpu[:, 0], expected.astype(np.float32))
    span = max(float(m.times[-1]) for m in machines) - start
    shifted = start + (np.arange(2000) * 10.0 + COPY_SHIFT_S) % span
    expected_copy = first_full.cpu[np.searchsorted(first_full.times, shifted, side="right") - 1]
    np.testing.assert_array_equal(cpu[:, FULL_MACHINES], expected_copy.astype(np.float32))


@needs_traces
def test_tile_copies_of_a_machine_are_shifted_by_a_day_and_47_minutes(machines: list[TraceSeries]) -> None:
    step_s = 60
    shift_steps = COPY_SHIFT_S // step_s
    steps = shift_steps + 500
    cpu, memory = tile(machines, n_nodes=2 * FULL_MACHINES, steps=steps, step_s=step_s)
    for node in (0, 5, FULL_MACHINES - 1):
        copy = node + FULL_MACHINES
        np.testing.assert_array_equal(cpu[:500, copy], cpu[shift_steps:, node])
        np.testing.assert_array_equal(memory[:500, copy], memory[shift_steps:, node])
        assert not np.array_equal(cpu[:500, copy], cpu[:500, node])


# --- Alibaba 2017 batch tasks -------------------------------------------------------------------------------------


@needs_traces
def test_alibaba2017_jobs_have_positive_sizes(batch_jobs: list[Job]) -> None:
    assert len(batch_jobs) > 10_000
    for job in batch_jobs:
        assert job.instances > 0 and job.cpu_milli > 0 and job.memory_mib > 0 and job.duration_s > 0


@needs_traces
def test_alibaba2017_arrivals_fall_in_the_measured_period_in_order(batch_jobs: list[Job]) -> None:
    arrivals = np.array([job.arrival_s for job in batch_jobs])
    assert arrivals.min() >= 0 and arrivals.max() < 86_400
    assert np.all(np.diff(arrivals) >= 0)


@needs_traces
def test_alibaba2017_cpu_is_mostly_half_or_one_core(batch_jobs: list[Job]) -> None:
    common = sum(job.cpu_milli in (500, 1000) for job in batch_jobs)
    assert common / len(batch_jobs) > 0.9


@needs_traces
def test_alibaba2017_jobs_belong_to_scenario_teams(batch_jobs: list[Job]) -> None:
    assert {job.team for job in batch_jobs} == {t.name for t in default_scenario().teams}


# --- generic usage CSV --------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_usage_csv_is_read_per_node_sorted_by_time(tmp_path: Path) -> None:
    path = write(tmp_path, "usage.csv", "timestamp_s,node,cpu_percent,mem_percent\n"
                                        "20,b,50,60\n10,a,25,40\n0,a,10,30\n")
    a, b = read_usage_csv(path)
    assert (a.name, a.times.tolist(), a.cpu.tolist(), a.memory.tolist()) == ("a", [0.0, 10.0], [0.1, 0.25], [0.3, 0.4])
    assert (b.name, b.cpu.tolist()) == ("b", [0.5])


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        pytest.param("time,node,cpu,mem\n0,a,1,1\n", "line 1", "expected header", id="wrong-header"),
        pytest.param("", "line 1", "expected header", id="empty-file"),
        pytest.param("timestamp_s,node,cpu_percent,mem_percent\n0,a,150,1\n", "line 2.cpu_percent",
                     "percentage", id="cpu-above-100"),
        pytest.param("timestamp_s,node,cpu_percent,mem_percent\n0,a,1,-3\n", "line 2.mem_percent",
                     "percentage", id="negative-memory"),
        pytest.param("timestamp_s,node,cpu_percent,mem_percent\n0,a,1,1\n5,a,nan,1\n", "line 3.cpu_percent",
                     "percentage", id="nan-cpu"),
        pytest.param("timestamp_s,node,cpu_percent,mem_percent\n0,a,busy,1\n", "line 2.cpu_percent",
                     "not a number", id="word-for-cpu"),
        pytest.param("timestamp_s,node,cpu_percent,mem_percent\nsoon,a,1,1\n", "line 2.timestamp",
                     "seconds", id="bad-time"),
        pytest.param("timestamp_s,node,cpu_percent,mem_percent\n0,a,1\n", "line 2", "4 columns",
                     id="short-row"),
    ],
)
def test_bad_usage_csv_names_the_line_and_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    path = write(tmp_path, "usage.csv", text)
    with pytest.raises(InputError) as caught:
        read_usage_csv(path)
    assert caught.value.field.endswith(field)
    assert fragment in caught.value.message


def test_a_usage_csv_without_samples_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no usable samples"):
        read_usage_csv(write(tmp_path, "usage.csv", "timestamp_s,node,cpu_percent,mem_percent\n"))


def test_a_missing_trace_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent.csv"
    with pytest.raises(InputError) as caught:
        read_usage_csv(missing)
    assert caught.value.field == str(missing)


def test_tile_refuses_a_trace_that_covers_no_time() -> None:
    one = TraceSeries("m", np.array([5.0]), np.array([0.1]), np.array([0.2]))
    with pytest.raises(InputError, match="no time"):
        tile([one], n_nodes=1, steps=1, step_s=10)


# --- generic jobs CSV ---------------------------------------------------------------------------------------------

JOBS_HEADER = "arrival_s,team,instances,cpu,memory,duration_s,needs_disk\n"


def test_jobs_csv_reads_quantities_and_caps_duration(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs.csv", JOBS_HEADER + "0,search,3,500m,2Gi,60,true\n"
                                                     "30.5,ads,1,2,1G,999999,False\n")
    first, second = read_jobs_csv(path, default_scenario())
    assert first == Job(0, 0.0, "search", 3, 500, 2048, 60.0, True)
    assert second == Job(1, 30.5, "ads", 1, 2000, 954, float(default_scenario().offline.max_duration_s), False)


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        pytest.param("0,nobody,1,1,1Gi,10,true", "line 2.team", "unknown team", id="unknown-team"),
        pytest.param("0,search,1,lots,1Gi,10,true", "line 2.cpu", "not a cpu quantity", id="bad-cpu"),
        pytest.param("0,search,1,1,-1Gi,10,true", "line 2.memory", "negative", id="negative-memory"),
        pytest.param("0,search,1,1,1Gi,10,maybe", "line 2.needs_disk", "true or false", id="bad-needs-disk"),
        pytest.param("0,search,0,1,1Gi,10,true", "line 2", "instances > 0", id="no-instances"),
        pytest.param("-5,search,1,1,1Gi,10,true", "line 2", "arrival_s >= 0", id="negative-arrival"),
        pytest.param("nan,search,1,1,1Gi,10,true", "line 2", "arrival_s >= 0", id="nan-arrival"),
        pytest.param("0,search,1,1,1Gi,inf,true", "line 2", "duration_s > 0", id="infinite-duration"),
        pytest.param("0,search,two,1,1Gi,10,true", "line 2", "must be numbers", id="word-for-instances"),
        pytest.param("0,search,1,1,1Gi,10", "line 2", "7 columns", id="short-row"),
    ],
)
def test_bad_jobs_csv_names_the_line_and_field(tmp_path: Path, row: str, field: str, fragment: str) -> None:
    path = write(tmp_path, "jobs.csv", JOBS_HEADER + row + "\n")
    with pytest.raises(InputError) as caught:
        read_jobs_csv(path, default_scenario())
    assert caught.value.field.endswith(field)
    assert fragment in caught.value.message


def test_jobs_csv_with_the_wrong_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "jobs.csv", "when,who,n,cpu,mem,dur,disk\n0,search,1,1,1Gi,10,true\n")
    with pytest.raises(InputError) as caught:
        read_jobs_csv(path, default_scenario())
    assert caught.value.field.endswith("line 1")
