"""Online usage per node and step: the load the broker must never squeeze.

Three sources, one result (``OnlineUsage``: fractions of each node's capacity, per step, plus whether the node's
metrics arrived in that step):

- ``synthetic``: a daily profile with an evening peak (published online fleets average 15-20% CPU, sized for the
  peak), per-node level and phase, slow noise, and short spikes of random height; memory steadier, near 40%;
- ``alibaba2018``: the raw Alibaba 2018 ``machine_usage`` rows (``machine_id,time_stamp,cpu_util_percent,
  mem_util_percent,...``, no header);
- ``csv``: ``timestamp_s,node,cpu_percent,mem_percent`` with a header, for any other trace.

Trace machines are tiled over the fleet: node ``i`` replays machine ``i mod M``, shifted by ``(i div M)`` times one
day and 47 minutes (wrapping around the trace), so copies neither repeat in lockstep nor lose their daily cycle.
Samples are irregular (about every 100 s in Alibaba 2018); each step takes the latest sample at or before it.

Metric outages (an agent that stops reporting) are drawn for every source: during one the node's usage goes on but
the estimators do not see it, which is what ``never lend on stale data`` is about.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from broker.errors import InputError
from plugins.sim.files import open_csv
from plugins.sim.scenario import OnlineFormat, OnlineSpec, Scenario

F32 = npt.NDArray[np.float32]
COPY_SHIFT_S = 86_400 + 47 * 60
MIN_COVERAGE = 0.9
MAX_TRACE_ROWS = 20_000_000


@dataclass(frozen=True)
class OnlineUsage:
    """Per step and node: online CPU and memory as fractions of capacity, and whether metrics arrived."""

    cpu: F32
    memory: F32
    seen: npt.NDArray[np.bool_]

    @property
    def steps(self) -> int:
        return int(self.cpu.shape[0])


def generate(scenario: Scenario, load_factor: np.ndarray, base: Path | None) -> OnlineUsage:
    """The online usage of every node over warm-up plus measured steps, from the scenario's source."""
    spec = scenario.online
    total = scenario.warmup_steps + scenario.steps
    n = len(load_factor)
    rng = np.random.default_rng(scenario.seed + 1)
    if spec.source is OnlineFormat.SYNTHETIC:
        cpu, memory = _synthetic(spec, scenario, total, load_factor, rng)
    else:
        from plugins.sim.scenario import resolve_trace

        path = resolve_trace(spec.path or "", base)
        series = read_alibaba2018(path) if spec.source is OnlineFormat.ALIBABA2018 else read_usage_csv(path)
        cpu, memory = tile(series, n, total, scenario.step_s)
        cpu = np.clip(cpu * spec.cpu_scale * load_factor[None, :], 0, 1).astype(np.float32)
        memory = np.clip(memory * spec.memory_scale, 0, 1).astype(np.float32)
    seen = _outages(spec, scenario, total, n, rng)
    return OnlineUsage(cpu=cpu, memory=memory, seen=seen)


# --- synthetic ----------------------------------------------------------------------------------------------------


def _synthetic(spec: OnlineSpec, scenario: Scenario, total: int, load_factor: np.ndarray,
               rng: np.random.Generator) -> tuple[F32, F32]:
    n = len(load_factor)
    step = scenario.step_s
    hours = (scenario.start_hour + np.arange(total) * step / 3600.0) % 24.0
    phase = rng.uniform(-0.75, 0.75, n)
    x = 2 * np.pi * (hours[:, None] - spec.peak_hour - phase[None, :]) / 24.0
    profile = 1.0 + spec.daily_amplitude * (0.8 * np.cos(x) + 0.2 * np.cos(2 * x))
    spread = rng.lognormal(0.0, 0.25, n)
    level = spec.mean_cpu * spread / spread.mean() * load_factor * spec.cpu_scale
    day_index = (np.arange(total) * step // 86_400).astype(np.int64)
    n_days = int(day_index[-1]) + 1 if total else 1
    daily = 1.0 + rng.normal(0.0, 0.05, (n_days, n))
    noise = _ar1(total, n, step, tau_s=600.0, std=spec.noise, rng=rng)
    cpu = level[None, :] * profile * daily[day_index] * (1.0 + noise)
    _add_spikes(cpu, spec, scenario, rng)
    mem_spread = rng.lognormal(0.0, 0.15, n)
    mem_level = spec.mean_memory * mem_spread / mem_spread.mean() * spec.memory_scale
    mem_noise = _ar1(total, n, step, tau_s=1800.0, std=0.03, rng=rng)
    memory = mem_level[None, :] * (1.0 + 0.05 * np.cos(x) + mem_noise)
    return (np.clip(cpu, 0.0, 0.98).astype(np.float32), np.clip(memory, 0.0, 0.95).astype(np.float32))


def _ar1(total: int, n: int, step_s: int, tau_s: float, std: float, rng: np.random.Generator) -> np.ndarray:
    """Slow, correlated noise with stationary standard deviation ``std`` and correlation time ``tau_s``."""
    rho = math.exp(-step_s / tau_s)
    shocks = rng.normal(0.0, std * math.sqrt(1 - rho * rho), (total, n)).astype(np.float32)
    out = np.empty((total, n), dtype=np.float32)
    state = rng.normal(0.0, std, n).astype(np.float32)
    for t in range(total):
        state = state * rho + shocks[t]
        out[t] = state
    return out


def _add_spikes(cpu: np.ndarray, spec: OnlineSpec, scenario: Scenario, rng: np.random.Generator) -> None:
    total, n = cpu.shape
    days = total * scenario.step_s / 86_400
    counts = rng.poisson(spec.spikes_per_day * days, n)
    for node in np.flatnonzero(counts):
        for _ in range(int(counts[node])):
            start = int(rng.integers(0, total))
            length = max(1, int(rng.uniform(60, 300) / scenario.step_s))
            cpu[start:start + length, node] += rng.exponential(spec.spike_mean)


def _outages(spec: OnlineSpec, scenario: Scenario, total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    seen = np.ones((total, n), dtype=np.bool_)
    days = total * scenario.step_s / 86_400
    counts = rng.poisson(spec.metric_outages_per_node_day * days, n)
    for node in np.flatnonzero(counts):
        for _ in range(int(counts[node])):
            start = int(rng.integers(0, total))
            length = max(1, int(spec.outage_minutes * 60 * rng.uniform(0.5, 1.5) / scenario.step_s))
            seen[start:start + length, node] = False
    return seen


# --- traces -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TraceSeries:
    """One trace machine's samples: times (s), CPU and memory as fractions."""

    name: str
    times: npt.NDArray[np.float64]
    cpu: npt.NDArray[np.float64]
    memory: npt.NDArray[np.float64]


def _percent(text: str, field: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {line}.{field}", f"{text!r} is not a number") from None
    if not 0.0 <= value <= 100.0 or value != value:
        raise InputError(f"line {line}.{field}", f"{value} is not a percentage in [0, 100]")
    return value / 100.0


def _collect(rows: list[tuple[str, float, float, float]]) -> list[TraceSeries]:
    by_node: dict[str, list[tuple[float, float, float]]] = {}
    for name, ts, cpu, mem in rows:
        by_node.setdefault(name, []).append((ts, cpu, mem))
    out = []
    for name in sorted(by_node):
        samples = np.array(sorted(by_node[name]), dtype=np.float64)
        out.append(TraceSeries(name, samples[:, 0], samples[:, 1], samples[:, 2]))
    if not out:
        raise InputError("trace", "no usable samples")
    return out


def read_alibaba2018(path: Path) -> list[TraceSeries]:
    """Raw Alibaba 2018 ``machine_usage`` rows; rows with an empty CPU or memory field are skipped."""
    rows: list[tuple[str, float, float, float]] = []
    with open_csv(path) as handle:
        for line, record in enumerate(csv.reader(handle), start=1):
            if len(record) < 4:
                raise InputError(f"{path}: line {line}", "expected at least machine_id,time_stamp,cpu,mem")
            if not record[2].strip() or not record[3].strip():
                continue
            rows.append((record[0], _seconds(record[1], line), _percent(record[2], "cpu_util_percent", line),
                         _percent(record[3], "mem_util_percent", line)))
            if len(rows) > MAX_TRACE_ROWS:
                raise InputError(str(path), f"more than {MAX_TRACE_ROWS} rows")
    return _collect(rows)


USAGE_CSV_HEADER = ("timestamp_s", "node", "cpu_percent", "mem_percent")


def read_usage_csv(path: Path) -> list[TraceSeries]:
    """The generic usage CSV: a header ``timestamp_s,node,cpu_percent,mem_percent``, then one row per sample."""
    rows: list[tuple[str, float, float, float]] = []
    with open_csv(path) as handle:
        reader = csv.reader(handle)
        header = tuple(h.strip() for h in next(reader, ()))
        if header[:4] != USAGE_CSV_HEADER:
            raise InputError(f"{path}: line 1", f"expected header {','.join(USAGE_CSV_HEADER)}")
        for line, record in enumerate(reader, start=2):
            if len(record) < 4:
                raise InputError(f"{path}: line {line}", "expected 4 columns")
            rows.append((record[1], _seconds(record[0], line), _percent(record[2], "cpu_percent", line),
                         _percent(record[3], "mem_percent", line)))
            if len(rows) > MAX_TRACE_ROWS:
                raise InputError(str(path), f"more than {MAX_TRACE_ROWS} rows")
    return _collect(rows)


def _seconds(text: str, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {line}.timestamp", f"{text!r} is not a number of seconds") from None
    if value != value or value < -1e12 or value > 1e12:
        raise InputError(f"line {line}.timestamp", f"{text!r} is out of range")
    return value


def tile(series: list[TraceSeries], n_nodes: int, steps: int, step_s: int) -> tuple[F32, F32]:
    """Replay trace machines over ``n_nodes`` nodes for ``steps`` steps (see the module docstring)."""
    start = min(float(s.times[0]) for s in series)
    end = max(float(s.times[-1]) for s in series)
    span = end - start
    if span <= 0:
        raise InputError("trace", "trace covers no time")
    full = [s for s in series if (s.times[-1] - s.times[0]) >= MIN_COVERAGE * span]
    cpu = np.empty((steps, n_nodes), dtype=np.float32)
    memory = np.empty((steps, n_nodes), dtype=np.float32)
    offsets = np.arange(steps, dtype=np.float64) * step_s
    for node in range(n_nodes):
        machine = full[node % len(full)]
        shift = (node // len(full)) * COPY_SHIFT_S
        at = start + (offsets + shift) % span
        index = np.clip(np.searchsorted(machine.times, at, side="right") - 1, 0, len(machine.times) - 1)
        cpu[:, node] = machine.cpu[index]
        memory[:, node] = machine.memory[index]
    return cpu, memory


__all__ = ["USAGE_CSV_HEADER", "OnlineUsage", "TraceSeries", "generate", "read_alibaba2018", "read_usage_csv", "tile"]
