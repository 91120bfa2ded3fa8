"""``--report DIR``: the JSON summary plus PNG plots of CPU utilisation over time, per policy and per site."""

from __future__ import annotations

from pathlib import Path

import orjson

from plugins.sim.run import SimulationRun


def write_report(result: SimulationRun, directory: Path) -> list[Path]:
    """Write ``summary.json``, ``utilisation.png`` and one ``site-<name>.png`` per site; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "summary.json"]
    written[0].write_bytes(orjson.dumps(result.summary(), option=orjson.OPT_INDENT_2))
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
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
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


__all__ = ["write_report"]
