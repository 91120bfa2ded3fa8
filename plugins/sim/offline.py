"""Offline demand: jobs, each one ApplicationMaster (AM) plus ``instances`` identical workers.

Sources (one result, a list of ``Job`` sorted by arrival):

- ``synthetic``: Poisson arrivals whose rate follows the day (``night_factor`` times heavier at 03:00 than the daily
  mean, lighter in the afternoon), sizes and durations drawn from the quantiles of the Alibaba 2017 batch trace
  (terminated tasks of ``batch_task_2017_full.csv``, 66,981 tasks: instances per task p50 2, p90 335, p99 1,999;
  duration p50 28 s, p90 428 s, p99 2,576 s; 73% of tasks ask 0.5 core per instance, 26% 1 core). The volume is set
  so that workers ask ``load`` times the fleet's CPU on average.
- ``alibaba2017``: the ``batch_task`` rows themselves: terminated tasks with a CPU request; one task is one job;
  ``number_of_instances`` times ``instance_scale``; CPU ``requested/100`` cores; memory = normalised memory x 256 GiB
  (the trace normalises by a machine size it does not publish; 256 GiB gives 2-4 GiB per core, typical of Spark
  executors). The trace's 17 hours of arrivals are stretched over each simulated day and replayed every day.
- ``csv``: ``arrival_s,team,instances,cpu,memory,duration_s,needs_disk`` with a header; arrival relative to the start
  of the measured period; quantities as Kubernetes text (``500m``, ``2Gi``); needs_disk ``true``/``false``.
"""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from broker.errors import InputError
from broker.model import Dimension, parse_quantity
from plugins.sim.files import open_csv
from plugins.sim.scenario import OfflineFormat, Scenario, resolve_trace

# Quantiles (0, 10, ..., 90, 95, 99, 100th percentile) of terminated Alibaba 2017 batch tasks, computed from
# ../shared/traces/alibaba2017/batch_task_2017_full.csv (see the module docstring).
_Q = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 100], dtype=np.float64) / 100
_INSTANCES = np.array([1, 1, 1, 1, 1, 2, 7, 27, 95, 335, 527, 1999, 64486], dtype=np.float64)
_DURATION_S = np.array([1, 4, 6, 10, 15, 28, 57, 112, 215, 428, 741, 2576, 29585], dtype=np.float64)
_HALF_CORE_SHARE = 0.73
TRACE_MEMORY_MIB = 256 * 1024
MAX_JOBS = 5_000_000


@dataclass(frozen=True, slots=True)
class Job:
    """One offline job: an AM plus ``instances`` workers of one shape, each running ``duration_s``."""

    id: int
    arrival_s: float
    team: str
    instances: int
    cpu_milli: int
    memory_mib: int
    duration_s: float
    needs_disk: bool


def generate(scenario: Scenario, fleet_cpu_milli: int, base: Path | None) -> list[Job]:
    """The offline jobs arriving during the measured period, from the scenario's source, sorted by arrival."""
    spec = scenario.offline
    span_s = scenario.steps * scenario.step_s
    if spec.source is OfflineFormat.SYNTHETIC:
        jobs = _synthetic(scenario, fleet_cpu_milli, span_s)
    elif spec.source is OfflineFormat.ALIBABA2017:
        jobs = read_alibaba2017(resolve_trace(spec.path or "", base), scenario, span_s)
    else:
        jobs = read_jobs_csv(resolve_trace(spec.path or "", base), scenario)
    jobs.sort(key=lambda job: (job.arrival_s, job.id))
    return jobs


def _team_of(key: int, scenario: Scenario) -> str:
    shares = np.cumsum([t.share for t in scenario.teams])
    point = (zlib.crc32(str(key).encode()) % 1_000_003) / 1_000_003 * shares[-1]
    return scenario.teams[int(np.searchsorted(shares, point, side="right").clip(0, len(shares) - 1))].name


def _needs_disk(key: int, fraction: float) -> bool:
    return (zlib.crc32(f"disk-{key}".encode()) % 10_000) < fraction * 10_000


def _synthetic(scenario: Scenario, fleet_cpu_milli: int, span_s: float) -> list[Job]:
    spec = scenario.offline
    rng = np.random.default_rng(scenario.seed + 2)
    memory_per_core = parse_quantity(spec.memory_per_core, Dimension.MEMORY, "offline.memory_per_core")
    # Mean worker core-seconds per job, estimated from a large sample of the same distributions.
    sample = 200_000
    inst = np.interp(rng.random(sample), _Q, _INSTANCES)
    dur = np.interp(rng.random(sample), _Q, _DURATION_S)
    cores = np.where(rng.random(sample) < _HALF_CORE_SHARE, 0.5, 1.0)
    mean_core_s = float(np.mean(np.ceil(inst) * np.minimum(dur, spec.max_duration_s) * cores))
    base_rate = spec.load * fleet_cpu_milli / 1000.0 / mean_core_s  # jobs per second
    # Arrival rate over the day: highest at 03:00, lowest at 15:00, mean 1.
    amp = (spec.night_factor - 1.0) / (spec.night_factor + 1.0)
    jobs: list[Job] = []
    t = 0.0
    peak_rate = base_rate * (1 + amp)
    while True:
        t += rng.exponential(1.0 / peak_rate)
        if t >= span_s:
            break
        hour = (scenario.start_hour + t / 3600.0) % 24
        rate = base_rate * (1 + amp * np.cos(2 * np.pi * (hour - 3.0) / 24))
        if rng.random() * peak_rate > rate:
            continue  # thinning: keeps a Poisson process with the time-varying rate
        key = len(jobs)
        cpu = 500 if rng.random() < _HALF_CORE_SHARE else 1000
        jobs.append(Job(
            id=key,
            arrival_s=t,
            team=_team_of(key, scenario),
            instances=int(np.ceil(np.interp(rng.random(), _Q, _INSTANCES))),
            cpu_milli=cpu,
            memory_mib=max(1, memory_per_core * cpu // 1000),
            duration_s=float(min(np.interp(rng.random(), _Q, _DURATION_S), spec.max_duration_s)),
            needs_disk=_needs_disk(key, spec.needs_disk_fraction),
        ))
        if len(jobs) > MAX_JOBS:
            raise InputError("offline.load", f"more than {MAX_JOBS} jobs; lower the load or the fleet")
    return jobs


def read_alibaba2017(path: Path, scenario: Scenario, span_s: float) -> list[Job]:
    """Alibaba 2017 ``batch_task`` rows as jobs (see the module docstring)."""
    spec = scenario.offline
    tasks: list[tuple[int, float, int, int, int, float]] = []
    with open_csv(path) as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if len(row) < 8:
                raise InputError(f"{path}: line {line}", "expected 8 columns")
            if row[5].strip() != "Terminated" or not row[6].strip() or not row[7].strip():
                continue
            try:
                created, ended = float(row[0]), float(row[1])
                instances, cpu = int(row[4]), float(row[6])
                memory = float(row[7])
            except ValueError:
                raise InputError(f"{path}: line {line}", "unreadable number") from None
            # Written as "not (good)" so that NaN, which compares false both ways, is skipped too.
            if not (ended > created and cpu > 0 and math.isfinite(ended - created)) or instances <= 0:
                continue
            tasks.append((line, created, instances, round(cpu * 10), max(1, int(memory * TRACE_MEMORY_MIB)),
                          ended - created))
    if not tasks:
        raise InputError(str(path), "no terminated tasks with a CPU request")
    first = min(t[1] for t in tasks)
    trace_span = max(t[1] for t in tasks) - first or 1.0
    stretch = 86_400 / trace_span
    jobs: list[Job] = []
    for day in range(int(np.ceil(span_s / 86_400))):
        for key, created, instances, cpu, memory, duration in tasks:
            arrival = day * 86_400 + (created - first) * stretch
            if arrival >= span_s:
                continue
            jid = len(jobs)
            jobs.append(Job(jid, arrival, _team_of(key, scenario), max(1, round(instances * spec.instance_scale)),
                            cpu, memory, min(duration, spec.max_duration_s),
                            _needs_disk(key, spec.needs_disk_fraction)))
    return jobs


JOBS_CSV_HEADER = ("arrival_s", "team", "instances", "cpu", "memory", "duration_s", "needs_disk")


def read_jobs_csv(path: Path, scenario: Scenario) -> list[Job]:
    """The generic jobs CSV (see the module docstring); unknown teams are refused."""
    teams = {t.name for t in scenario.teams}
    jobs: list[Job] = []
    with open_csv(path) as handle:
        reader = csv.reader(handle)
        header = tuple(h.strip() for h in next(reader, ()))
        if header[:7] != JOBS_CSV_HEADER:
            raise InputError(f"{path}: line 1", f"expected header {','.join(JOBS_CSV_HEADER)}")
        for line, row in enumerate(reader, start=2):
            where = f"{path}: line {line}"
            if len(row) < 7:
                raise InputError(where, "expected 7 columns")
            if row[1] not in teams:
                raise InputError(f"{where}.team", f"unknown team {row[1]!r}")
            try:
                arrival, instances, duration = float(row[0]), int(row[2]), float(row[5])
            except ValueError:
                raise InputError(where, "arrival_s, instances and duration_s must be numbers") from None
            if not (0 <= arrival < math.inf and 0 < duration < math.inf) or instances <= 0:
                raise InputError(where, "arrival_s >= 0, instances > 0 and duration_s > 0 are required")
            if row[6].strip().lower() not in ("true", "false"):
                raise InputError(f"{where}.needs_disk", "expected true or false")
            jobs.append(Job(len(jobs), arrival, row[1], instances,
                            parse_quantity(row[3], Dimension.CPU, f"{where}.cpu"),
                            parse_quantity(row[4], Dimension.MEMORY, f"{where}.memory"),
                            min(duration, scenario.offline.max_duration_s), row[6].strip().lower() == "true"))
            if len(jobs) > MAX_JOBS:
                raise InputError(str(path), f"more than {MAX_JOBS} jobs")
    return jobs


__all__ = ["JOBS_CSV_HEADER", "Job", "generate", "read_alibaba2017", "read_jobs_csv"]
