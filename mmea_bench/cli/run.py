"""``mmea-bench run``: a sweep with progress bars, then the sweep's leaderboard (printed, and logged to MLflow)."""

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mmea_bench.cli import cli, console, stops_interrupt
from mmea_bench.cli.results import TABLES, print_leaderboard
from mmea_bench.errors import UserError
from mmea_bench.observer import Observer
from mmea_bench.settings import parse_assignments
from mmea_bench.tracking import DEFAULT_EXPERIMENT


def _ratios(text: str | None, split: str) -> list[float]:
    if text is not None and split != "seeded":
        raise UserError(f"--ratios {text}: a release split (--split {split}) has the ratio of its own training links")
    text = text or "0.2"
    try:
        return [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise UserError(f"--ratios {text}: expected numbers separated by commas, such as 0.2,0.5,0.8") from None


def _workers(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--workers {text}: expected auto or a number of worker processes") from None


class RunBar(Observer):
    """One run's progress bar: its epochs, with the latest validation Hits@1."""

    def __init__(self, progress: Progress, label: str, epochs: int):
        self.progress, self.label = progress, label
        self.task = progress.add_task(label, total=epochs)

    def epoch_finished(self, epoch: int, epochs: int, latest: dict[str, float]) -> None:
        hits = next((value for key, value in latest.items() if key.endswith("_hits_at_1") and "2" not in key), None)
        text = self.label + (f"  valid H@1 {hits:.3f}" if hits is not None else "")
        self.progress.update(self.task, completed=epoch, description=text)


class SweepProgress(Observer):
    """Rich progress bars: one over the sweep, one over each run in progress."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.sweep = progress.add_task("sweep", total=None)
        self.bars: dict[str, RunBar] = {}

    def sweep_started(self, total: int) -> None:
        """Show the bars (from here on: the store opened and the data loaded, or their error stands alone)."""
        self.progress.update(self.sweep, total=total)
        self.progress.start()

    def task_started(self, description: str, total: int):
        task = self.progress.add_task(description, total=total)
        return lambda done: self.progress.advance(task, done)

    def run_started(self, label: str, epochs: int) -> Observer:
        self.bars[label] = RunBar(self.progress, label, epochs)
        return self.bars[label]

    def run_finished(self, record) -> None:
        self.progress.advance(self.sweep)
        label = f"{record.method} {record.dataset} r={record.ratio:g} s={record.seed}"
        if label in self.bars:
            self.progress.remove_task(self.bars.pop(label).task)
        if record.status == "FAILED":
            self.progress.console.print(f"[red]failed[/red] {label}: {record.error}")


@cli.command()
@click.argument("methods", nargs=-1, required=True)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    default=["synthetic"],
    show_default=True,
    help="Dataset name, or NAME:key=value,... with dataset parameters. Repeat for several.",
)
@click.option("--ratios", help="Seed ratios of the seeded split, comma-separated [default: 0.2].")
@click.option(
    "--split",
    default="seeded",
    show_default=True,
    help="seeded (drawn per seed at each ratio), release or release:N (the dataset's own split: DBP15K's sup/ref, "
    "OpenEA's fold N), to compare with published figures.",
)
@click.option("--seeds", default=1, show_default=True, help="Seeds per cell (0, 1, ...: split and initialisation).")
@click.option("--first-seed", default=0, show_default=True, help="The first seed (to add seeds to an earlier sweep).")
@click.option(
    "--profile",
    default="equal",
    show_default=True,
    help="equal (each recipe as it stands, one budget for all) or published (each method's published schedule: "
    "epochs, phase starts, windows, learning-rate drop; 'methods show NAME' lists it).",
)
@click.option("--epochs", type=int, help="Epoch budget for every method (else each method's default).")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a method setting.")
@click.option("--without", multiple=True, metavar="PART", help="Ablate a modality, a loss or pseudo-labels.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:INDEX.")
@click.option("--tracking-uri", help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI or ./mlflow.db].")
@click.option("--experiment", default=DEFAULT_EXPERIMENT, show_default=True, help="MLflow experiment name.")
@click.option("--valid-fraction", default=0.1, show_default=True, help="Fraction of gold links for validation.")
@click.option(
    "--workers",
    default="auto",
    show_default=True,
    help="Runs trained side by side, each in a worker process (auto: one per CPU core, at most one per run; "
    "1: one after another in this process).",
)
@click.option(
    "--executor",
    default="auto",
    show_default=True,
    help="Where runs train: auto (by --workers), local, processes[:workers=N,threads=T] or "
    "ray[:address=HOST:PORT|auto,cpus=C,gpus=G]; 'mmea-bench plugins' lists the registered executors.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Reuse runs FINISHED earlier in the experiment with the same configuration, data, split, seed and code; "
    "train only the others (failed or killed ones again, from their latest checkpoint where --checkpoint-every "
    "saved one).",
)
@click.option(
    "--checkpoint-every",
    default=0,
    show_default=True,
    metavar="N",
    help="Save each run's training state every N epochs (0: never), so that --resume goes on from there after an "
    "interruption, to the same result; removed once the run has finished.",
)
@click.option(
    "--checkpoints",
    type=click.Path(path_type=Path),
    help="Folder of the checkpoints [default: the cache's checkpoints folder].",
)
@click.option(
    "--tables",
    type=TABLES,
    default="compact",
    show_default=True,
    help="Print Hits@1/10 and MRR by the selection scorer in one table, or every metric and scorer.",
)
def run(methods, datasets, ratios, split, seeds, first_seed, profile, epochs, settings, without, device, tracking_uri,
        experiment, valid_fraction, workers, executor, resume, checkpoint_every, checkpoints, tables):  # fmt: skip
    """Train and evaluate METHODS on every dataset, seed ratio and seed; record each run in MLflow."""
    from mmea_bench import api

    plan = api.plan_sweep(
        methods,
        datasets,
        _ratios(ratios, split),
        seeds,
        first_seed=first_seed,
        epochs=epochs,
        settings=parse_assignments("--set", settings),
        without=without,
        device=device,
        tracking_uri=tracking_uri,
        experiment=experiment,
        valid_fraction=valid_fraction,
        workers=_workers(workers),
        executor=executor,
        resume=resume,
        split=split,
        profile=profile,
        checkpoint_every=checkpoint_every,
        checkpoints=checkpoints,
    )
    columns = TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    progress = Progress(*columns, console=console)
    try:
        with stops_interrupt():
            result = api.execute(plan, SweepProgress(progress))
    finally:
        if progress.live.is_started:
            progress.stop()
    tracker = result.tracker
    reused = sum(record.reused for record in result.runs)
    if reused:
        trained = len(result.runs) - reused
        console.print(f"Reused {reused} finished run(s) of earlier sweeps (--resume); trained {trained}")
    print_leaderboard(api.leaderboard(tracker.experiment, tracker.tracking_uri, result.parent_run_id), tables)
    console.print(f"Recorded in MLflow: {tracker.describe()}, sweep run {result.parent_run_id}")
