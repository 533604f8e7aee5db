"""Where a run's time goes: start-up phases, each component's forward pass, the losses, the backward pass and the
optimiser step of one epoch, early (training seeds only) and late (with pseudo-labelled pairs), a validation check
and a pseudo-label check.

    python benchmarks/breakdown.py pcmea --threads 1
    python benchmarks/breakdown.py mclea --dataset fb15k-db15k --threads 2

Start-up is measured in fresh processes (imports, the plugins, the MLflow store, the dataset). Epochs are those of
the harness's runner (``Training.epoch``); the parts are timed by running the same steps one at a time (encoders
embed only the pairs' entities where the runner does), each the median of ``--repeat`` repetitions after a warm-up.
The late epoch adds as pseudo-pairs the mutual nearest neighbours of the model after the warm-up epochs (about as
many as a pseudo-labeler accepts in a run). Momentum contrast, where a method has it, is switched on from the first
epoch, as it is in the second half of a run.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time

STARTUP_STEPS = {
    "import torch": "import torch",
    "import the plugins (all registries)": "from mmea_bench.hookspecs import KINDS\n"
    "from mmea_bench.plugins import plugin_manager\n[plugin_manager.registry(kind) for kind in KINDS]",
    "open the MLflow store": "from mmea_bench.tracking import open_tracker\n"
    "open_tracker('sqlite:///{store}', 'startup')",
    "load the dataset": "from mmea_bench.data.loading import DatasetSpec, load_dataset\n"
    "load_dataset(DatasetSpec.parse('{dataset}'))",
}


def startup(dataset: str) -> dict[str, float]:
    """Seconds of each start-up step, each measured in a fresh process after the steps before it."""
    seconds, done = {}, []
    with tempfile.TemporaryDirectory() as folder:
        for label, code in STARTUP_STEPS.items():
            step = code.format(store=f"{folder}/mlflow.db", dataset=dataset)
            script = "\n".join([*done, "import time", "started = time.perf_counter()", step,
                                "print(time.perf_counter() - started)"])  # fmt: skip
            result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
            seconds[label] = float(result.stdout.strip().splitlines()[-1])
            done.append(step)
    return seconds


def median_ms(action, repeat: int) -> float:
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def parts(training, repeat: int) -> dict[str, float]:
    """Milliseconds of each step of one epoch, in the runner's order."""
    import torch

    from mmea_bench.components.base import Batch, RowGather

    model, view = training.model, training.view
    pairs = view.train_pairs()
    entities = torch.unique(pairs)
    with torch.no_grad():
        _, positions = training.embed_for(pairs)  # positions: the runner embeds only the pairs' entities

    def encode(encoder):
        return encoder() if positions is None else encoder.rows(entities)

    results = {f"forward {name} ({type(encoder).__name__})": median_ms(lambda e=encoder: encode(e), repeat)
               for name, encoder in model.encoders.items()}  # fmt: skip
    embeddings = {name: encode(encoder) for name, encoder in model.encoders.items()}
    results["forward fusion"] = median_ms(lambda: model.fusion(embeddings), repeat)
    embeddings["joint"] = model.fusion(embeddings)
    size = training.settings.batch_size or len(pairs)
    batches = [pairs[start : start + size] for start in range(0, len(pairs), size)]

    def in_batches(embeddings):
        gather = RowGather(embeddings, batches, positions)
        return [Batch(batch, embeddings, view, gather, position) for position, batch in enumerate(batches)]

    def losses(names):
        cached = in_batches(embeddings)
        return [training.losses[name](batch) for name in names for batch in cached]

    done = []
    for name in training.losses:
        before = median_ms(lambda names=tuple(done): losses(names), repeat) if done else 0.0
        results[f"loss {name} ({len(batches)} batches)"] = median_ms(lambda n=(*done, name): losses(n), repeat) - before
        done.append(name)

    def embed_all():
        return training.embed_for(pairs)[0]

    def backward():
        cached = in_batches(embed_all())
        total = sum(training.losses[name](batch) for name in training.losses for batch in cached)
        training.optimizer.zero_grad(set_to_none=True)
        total.backward()

    forward_all = median_ms(lambda: losses(list(training.losses)) and embed_all(), repeat)
    results["backward (all parts)"] = median_ms(backward, repeat) - forward_all
    results["optimiser step"] = median_ms(training.optimizer.step, repeat) if training.optimizer else 0.0
    with torch.no_grad():
        results["after-step hooks"] = median_ms(lambda: [c.after_step(view) for c in training.assembly.components], 3)
    return results


def training_for(method: str, dataset: str, ratio: float, settings: dict[str, str]):
    """The runner's ``Training`` of a method (momentum contrast, where it has one, from the first epoch)."""
    import torch

    from mmea_bench.data import split_links
    from mmea_bench.data.loading import DatasetSpec, load_dataset
    from mmea_bench.methods import configure, get_method
    from mmea_bench.runner import Training

    kg = load_dataset(DatasetSpec.parse(dataset))
    if "loss.momentum-contrast.ts" in configure(get_method(method), {}).flat():
        settings = {"loss.momentum-contrast.ts": "0.0"} | settings
    config = configure(get_method(method), {"epochs": "1000"} | settings)
    return kg, Training(config, kg, split_links(kg.links, ratio, 0.1, 0), 0, torch.device("cpu"))


def measure(method: str, dataset: str, ratio: float, warmup: int, repeat: int, settings: dict[str, str]) -> None:
    import torch

    from mmea_bench.components.pseudo_labelers import unaligned_mutual_pairs
    from mmea_bench.devices import deterministic_on_cpu

    print(f"start-up (fresh processes, {dataset}):")
    for label, seconds in startup(dataset).items():
        print(f"  {label:45s} {seconds:6.2f} s")
    with deterministic_on_cpu(torch.device("cpu")):
        kg, training = training_for(method, dataset, ratio, settings)
        threads = torch.get_num_threads()
        print(f"{method} on {kg.name}, ratio {ratio}, {threads} thread(s); milliseconds, median of {repeat}")
        for epoch in range(1, warmup + 1):
            training.epoch(epoch)
        view = training.view
        view.epoch = warmup + 1
        for phase in ("early", "late"):
            if phase == "late":
                view.pseudo_pairs = unaligned_mutual_pairs(view, "joint", torch.empty(0, 2, dtype=torch.long))
            print(f"{phase} epoch: {len(view.train_pairs()):,} training pairs")
            timings = parts(training, repeat) | {"whole epoch (Training.epoch)": median_ms(
                lambda: training.epoch(warmup + 1), repeat)}  # fmt: skip
            for label, value in timings.items():
                print(f"  {label:55s} {value:8.1f}")
        check = median_ms(lambda: (view.forget_embeddings(), training.evaluate(training.valid, "v")), 3)
        print(f"  {'validation check (embed every entity, rank them)':55s} {check:8.1f}")
        labeler = training.assembly.pseudo_labeler
        if labeler is not None:
            labeler.schedule.start_epoch, view.epoch = 1, 1 + labeler.schedule.step
            propose = median_ms(lambda: labeler.propose(view), 3)
            print(f"  {'pseudo-label check (' + type(labeler).__name__ + ')':55s} {propose:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=20, help="epochs trained before measuring (default 20)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    import torch

    from mmea_bench.settings import parse_assignments

    torch.set_num_threads(args.threads)
    settings = parse_assignments("--set", args.settings)
    measure(args.method, args.dataset, args.ratio, args.warmup, args.repeat, settings)


if __name__ == "__main__":
    main()
