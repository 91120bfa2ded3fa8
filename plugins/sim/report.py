"""``--report DIR``: the JSON summary plus PNG plots of CPU utilisation over time, per policy and per site, of
each team's elastic quota over time (runtime quota, use, min, borrowed, lent, reclaimed) and of the offline reads
over each site link (the ``broker`` policy's planner keeps them within the link's free capacity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from plugins.sim.run import SimulationRun


def write_report(result: SimulationRun, directory: Path) -> list[Path]:
    """Write ``summary.json``, ``utilisation.png`` and one ``site-<name>.png`` per site; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "summary.json"]
    document = result.summary()
    document["team_series"] = {r.policy: r.team_series for r in result.results if r.team_series}
    document["link_series"] = {r.policy: r.link_series for r in result.results if r.link_series}
    written[0].write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    limit = result.scenario.safe_limit.cpu

    fig, ax = plt.subplots(figsize=(11, 4.5))
    for policy in result.results:
        hours = [t / 3600 for t in policy.series_t_s]
        ax.plot(hours, [u * 100 for u in policy.series_util], label=policy.policy, linewidth=1.2)
    ax.axhline(limit * 100, color="red", linestyle="--", linewidth=0.8, label="safe limit")
    ax.set(xlabel="hours", ylabel="fleet CPU utilisation (%)", ylim=(0, 100),
           title=f"{result.scenario.name}: online + offline CPU, {len(result.inventory.nodes)} nodes")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    path = directory / "utilisation.png"
    _save(fig, path, plt)
    written.append(path)

    for site in result.inventory.sites:
        fig, ax = plt.subplots(figsize=(11, 3.5))
        for policy in result.results:
            hours = [t / 3600 for t in policy.series_t_s]
            ax.plot(hours, [u * 100 for u in policy.series_site_util.get(site.name, [])], label=policy.policy,
                    linewidth=1.0)
        ax.axhline(limit * 100, color="red", linestyle="--", linewidth=0.8)
        ax.set(xlabel="hours", ylabel="CPU utilisation (%)", ylim=(0, 100), title=f"site {site.name}")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
        path = directory / f"site-{site.name}.png"
        _save(fig, path, plt)
        written.append(path)
    for policy in result.results:
        if policy.team_series:
            written.append(_team_plot(policy.policy, policy.team_series, directory, plt))
        if policy.link_series and policy.links:
            written.append(_link_plot(policy.policy, policy.link_series, policy.links, directory, plt))
    return written


def _link_plot(policy: str, series: dict[str, Any], links: list[dict[str, Any]], directory: Path, plt: Any) -> Path:
    """Per site pair, offline reads over time as a share of the link's free capacity (average and peak in the
    legend)."""
    hours = [t / 3600 for t in series["t_s"]]
    fig, ax = plt.subplots(figsize=(11, 4))
    for link in links:
        name = f"{link['a']}<->{link['b']}"
        free = max(link["capacity_mbps"] - link["online_used_mbps"], 1)
        ax.plot(hours, [100 * mbps / free for mbps in series[name]], linewidth=1.0,
                label=f"{name} ({free:,} Mbit/s free; avg {link['utilisation_avg']:.0%}, "
                      f"peak {link['utilisation_peak']:.0%})")
    ax.axhline(100, color="red", linestyle="--", linewidth=0.8, label="link capacity")
    ax.set(xlabel="hours", ylabel="offline reads (% of free capacity)", ylim=(0, 110),
           title=f"{policy}: link utilisation per site pair (sampled every 5 min)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    path = directory / f"links-{policy}.png"
    _save(fig, path, plt)
    return path


def _team_plot(policy: str, series: dict[str, Any], directory: Path, plt: Any) -> Path:
    """Per team, over time: runtime quota, CPU used, effective min; borrowed (+) and lent (-); reclaimed in title."""
    teams = [team for team in series if team != "t_s"]
    hours = [t / 3600 for t in series["t_s"]]
    fig, axes = plt.subplots(len(teams), 1, figsize=(11, 2.2 * len(teams)), sharex=True, squeeze=False)
    for ax, team in zip(axes[:, 0], teams, strict=True):
        s = series[team]
        ax.plot(hours, s["runtime"], label="runtime quota", linewidth=1.0)
        ax.plot(hours, s["used"], label="used", linewidth=1.0)
        ax.plot(hours, s["min"], label="min (effective)", linestyle="--", linewidth=0.8)
        ax.fill_between(hours, 0, s["borrowed"], alpha=0.25, label="borrowed")
        ax.fill_between(hours, 0, [-x for x in s["lent"]], alpha=0.25, label="lent")
        ax.set_title(f"{team}: guarantee met {_mean(s['guaranteed_met']):.0%}, reclaimed {s['reclaimed']} containers",
                     fontsize=9)
        ax.set_ylabel("cores")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=5)
    axes[-1, 0].set_xlabel("hours")
    fig.suptitle(f"{policy}: elastic quota per team")
    path = directory / f"teams-{policy}.png"
    _save(fig, path, plt)
    return path


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 1.0


def _save(fig: Any, path: Path, plt: Any) -> None:
    """Write one figure as a PNG and free it (pyplot keeps every open figure in memory)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["write_report"]
