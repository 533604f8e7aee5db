"""The Python API that the command line wraps: sweeps, leaderboards, datasets, features and the plugin catalogue."""

from collections.abc import Sequence
from typing import Any

from mmea_bench.observer import Observer
from mmea_bench.plugins import PluginManager, plugin_manager
from mmea_bench.sweep import RunRecord, SweepPlan, SweepResult, execute, plan_sweep

__all__ = ["RunRecord", "SweepPlan", "SweepResult", "execute", "plan_sweep", "run"]


def run(
    methods: Sequence[str],
    datasets: Sequence[str] = ("synthetic",),
    ratios: Sequence[float] = (0.2,),
    seeds: int = 1,
    *,
    observer: Observer | None = None,
    plugins: PluginManager = plugin_manager,
    **options: Any,
) -> SweepResult:
    """Plan and execute a sweep of methods x datasets x seed ratios x seeds (options: those of :func:`plan_sweep`)."""
    plan = plan_sweep(methods, datasets, ratios, seeds, plugins=plugins, **options)
    return execute(plan, observer, plugins)
