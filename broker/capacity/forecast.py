"""The broker's spare-capacity estimator: lend against a forecast of the coming peak, not the last sample.

For each node and each of CPU and memory (dimension ``d``), at time ``t``, with look-ahead ``H``::

    recent(t)   = max of samples in [t - R, t]                               the recent peak
    season(t)   = max over k in {1, 2} days of
                  [ max of samples in [t - k*DAY, t - k*DAY + H]             what the same hour did before
                    + (mean[t - L, t] - mean[t - k*DAY - L, t - k*DAY]) ]    shifted by today's level vs then
    trend(t)    = last sample + max(slope of the last 2L, 0) * H             a rising load keeps rising (H <= 1 h)
    forecast(t) = max(recent, season, trend)
    margin(t)   = floor * capacity + spike * q95 over the last day's buckets of (bucket peak - bucket mean)
    lendable(t) = capacity * threshold - forecast - margin - reserve,   clipped at 0
    stable(t)   = capacity * threshold - max(forecast, peak of the next 24 h a day ago, shifted) - margin - reserve

The thresholds (85% CPU, 90% memory by default) are the node's *safe limit*: above it online work is hurt. The
safety invariant, property-tested: ``lendable <= capacity * threshold - forecast - reserve`` for every node, and a
node whose newest sample is older than ``stale_after_s`` lends nothing at all (stale metrics lend less, never more).

**Stretch.** CPU is compressible (an offline container that wants more CPU is throttled, not killed); memory is not.
When memory is left over because CPU is the bottleneck for the offline demand's shape (``cpu_per_gib`` cores per
GiB), the CPU offered is stretched so that the leftover memory can be used: by up to ``stretch_max``, and never so far
that the CPU offline containers really use (``offline_cpu_usage`` of what they ask for, measured) exceeds the safe
amount. Memory is never stretched. With ``offline_cpu_usage = 1`` nothing is stretched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from broker.capacity.estimate import Fleet, Lendable, clamp_nonnegative
from broker.capacity.history import DAY_S, FloatArray, IntArray, UsageHistory


@dataclass(frozen=True)
class ForecastConfig:
    """Tuning of the forecasting estimator. Defaults are the ones measured in ``docs/benchmarks.md``."""

    cpu_threshold: float = 0.85
    memory_threshold: float = 0.90
    horizon_s: float = 1800.0
    recent_s: float = 900.0
    level_s: float = 1800.0
    floor_fraction: float = 0.025
    spike_factor: float = 0.4
    spike_quantile: float = 0.95
    stale_after_s: float = 60.0
    cpu_per_gib: float = 0.5
    offline_cpu_usage: float = 1.0
    stretch_max: float = 0.25

    def __post_init__(self) -> None:
        for name in ("cpu_threshold", "memory_threshold", "floor_fraction", "offline_cpu_usage"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0 and not (name == "floor_fraction" and value == 0.0):
                raise ValueError(f"{name} must be within (0, 1], got {value}")
        if self.horizon_s <= 0 or self.recent_s <= 0 or self.level_s <= 0 or self.stale_after_s <= 0:
            raise ValueError("horizon_s, recent_s, level_s and stale_after_s must be positive")
        if self.spike_factor < 0 or self.stretch_max < 0 or self.cpu_per_gib <= 0:
            raise ValueError("spike_factor and stretch_max must be >= 0, cpu_per_gib > 0")


@dataclass(frozen=True)
class Forecast:
    """The forecasting estimator (see the module docstring)."""

    config: ForecastConfig = ForecastConfig()
    name: str = "broker"

    def forecast_peak(self, history: UsageHistory, dim: int, now_s: float, horizon_s: float) -> FloatArray:
        """Per node, the forecast peak of online usage in dimension ``dim`` over [now, now + horizon]."""
        return self.forecast_peaks(history, dim, now_s, (horizon_s,))[0]

    def forecast_peaks(self, history: UsageHistory, dim: int, now_s: float,
                       horizons_s: tuple[float, ...]) -> list[FloatArray]:
        """``forecast_peak`` for several look-aheads at once (``estimate`` wants the next half hour and the next
        day): only the seasonal peaks over the look-ahead and the trend's reach depend on it, so the recent peak,
        the levels and the slope are read from the history once."""
        c = self.config
        last = history.last[dim].astype(np.float64)
        recent = history.peak(dim, now_s - c.recent_s, now_s).astype(np.float64)
        latest = np.maximum(last, recent)
        level_now = history.mean(dim, now_s - c.level_s, now_s)
        shifts: list[tuple[float, FloatArray]] = []
        for days in (1, 2):
            then = now_s - days * DAY_S
            level_then = history.mean(dim, then - c.level_s, then)
            shifts.append((then, np.nan_to_num(level_now - level_then, nan=0.0)))
        older = history.mean(dim, now_s - 2 * c.level_s, now_s - c.level_s)
        rising = np.maximum(np.nan_to_num((level_now - older) / c.level_s, nan=0.0), 0.0)
        peaks: list[FloatArray] = []
        for horizon_s in horizons_s:
            forecast = latest
            for then, shift in shifts:
                past_peak = history.peak(dim, then, then + horizon_s).astype(np.float64)
                season = np.where(past_peak >= 0, past_peak + shift, -np.inf)
                forecast = np.maximum(forecast, season)
            # The trend is extrapolated over the planning look-ahead only: a day-long extrapolation would be noise.
            trend = last + rising * min(horizon_s, c.horizon_s)
            peaks.append(np.maximum(forecast, trend))
        return peaks

    def margin(self, history: UsageHistory, fleet: Fleet, dim: int, now_s: float) -> FloatArray:
        """Per node, the safety margin in dimension ``dim``: a floor plus a share of a typical bad spike of the last
        day (the ``spike_quantile`` of how far a 5-minute bucket's peak stood above its mean; 1.0 = the worst)."""
        c = self.config
        if c.spike_quantile >= 1.0:
            spikes = history.spread(dim, now_s - DAY_S, now_s).astype(np.float64)
        else:
            spikes = history.spread_quantile(dim, now_s - DAY_S, now_s, c.spike_quantile).astype(np.float64)
        return c.floor_fraction * fleet.capacity(dim) + c.spike_factor * spikes

    def safe_rooms(self, fleet: Fleet, history: UsageHistory, dim: int, now_s: float,
                   horizons_s: tuple[float, ...]) -> list[FloatArray]:
        """``capacity * threshold - forecast - margin - reserve`` per node (may be negative), for each look-ahead;
        the margin and most of the forecast do not depend on it and are computed once (see ``forecast_peaks``)."""
        threshold = self.config.cpu_threshold if dim == 0 else self.config.memory_threshold
        ceiling = fleet.capacity(dim) * threshold
        margin = self.margin(history, fleet, dim, now_s)
        reserved = fleet.reserved(dim)
        return [ceiling - peak - margin - reserved for peak in self.forecast_peaks(history, dim, now_s, horizons_s)]

    def estimate(self, fleet: Fleet, history: UsageHistory, now_s: float) -> Lendable:
        c = self.config
        fresh = history.age_s(now_s) <= c.stale_after_s
        room_cpu, day_cpu = self.safe_rooms(fleet, history, 0, now_s, (c.horizon_s, DAY_S))
        room_mem, day_mem = self.safe_rooms(fleet, history, 1, now_s, (c.horizon_s, DAY_S))
        cpu = clamp_nonnegative(room_cpu)
        mem = clamp_nonnegative(room_mem)
        stable_cpu = np.minimum(cpu, clamp_nonnegative(day_cpu))
        stable_mem = np.minimum(mem, clamp_nonnegative(day_mem))
        cpu = self.stretch(cpu, mem)
        zero = np.zeros(len(fleet), dtype=np.int64)
        return Lendable(
            cpu_milli=np.where(fresh, cpu, zero),
            memory_mib=np.where(fresh, mem, zero),
            stable_cpu_milli=np.where(fresh, stable_cpu, zero),
            stable_memory_mib=np.where(fresh, stable_mem, zero),
        )

    def stretch(self, cpu_milli: IntArray, memory_mib: IntArray) -> IntArray:
        """CPU offered after stretching it towards the memory left over (see the module docstring)."""
        c = self.config
        matching_cpu = memory_mib / 1024.0 * c.cpu_per_gib * 1000.0
        ceiling = np.minimum(cpu_milli / c.offline_cpu_usage, cpu_milli * (1.0 + c.stretch_max))
        stretched = np.minimum(np.maximum(cpu_milli, matching_cpu), ceiling)
        out: IntArray = np.maximum(np.floor(stretched), cpu_milli).astype(np.int64)
        return out


__all__ = ["Forecast", "ForecastConfig"]
