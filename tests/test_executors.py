"""Cells trained side by side in real worker processes: the same numbers as in this process, failures and
interrupts recorded, no process left behind."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from mmea_bench import api
from mmea_bench.cli import stops_interrupt
from mmea_bench.data import split_links
from mmea_bench.data.synthetic import generate_synthetic
from mmea_bench.errors import UserError
from mmea_bench.executors import InProcess, SweepContext
from mmea_bench.executors.processes import CoreShare, SharingSender, WorkerProcesses
from mmea_bench.methods import configure, get_method
from mmea_bench.observer import Observer
from mmea_bench.runner import train
from mmea_bench.tracking import interrupts_deferred
from mmea_bench.tracking.mlflow_tracker import MlflowTracker
from tests.conftest import TINY_SPEC, alive, descendants, recorded_runs
from tests.example_plugins import DegreePlugin

SHORT = {"epochs": 6, "settings": {"check_every": "3"}}


def test_worker_processes_give_the_numbers_of_the_same_runs_in_this_process(tracking_uri, experiment):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker of two on this machine's cores
    try:
        alone = api.run(["gcn-align"], [TINY_SPEC], [0.3, 0.5], tracking_uri=tracking_uri, experiment=experiment,
                        workers=1, **SHORT)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    side_by_side = api.run(["gcn-align"], [TINY_SPEC], [0.3, 0.5], tracking_uri=tracking_uri, experiment=experiment,
                           workers=2, **SHORT)  # fmt: skip
    assert side_by_side.runs and all(record.status == "FINISHED" for record in side_by_side.runs)
    by_ratio = {record.ratio: record.outcome.test for record in alone.runs}
    for record in side_by_side.runs:
        assert record.outcome.test == pytest.approx(by_ratio[record.ratio], rel=1e-5)
    frame = recorded_runs(MlflowTracker(tracking_uri, experiment))
    client = MlflowTracker(tracking_uri, experiment).client
    for run_id in frame[frame["sweep"] == side_by_side.parent_run_id]["run_id"]:
        assert [point.step for point in client.get_metric_history(run_id, "valid_csls_mrr")] == [3, 6]


def test_a_run_gives_the_same_numbers_with_one_thread_or_two():
    """What lets a worker take the cores of workers that have ended mid-run: its numbers do not depend on them."""
    kg = generate_synthetic(entities=1500)
    split = split_links(kg.links, 0.2, 0.1, 0)
    config = configure(get_method("mclea"), {"epochs": "4", "check_every": "2"})
    threads, outcomes = torch.get_num_threads(), []
    try:
        for count in (1, 2):
            torch.set_num_threads(count)
            outcomes.append(train(config, kg, split, device="cpu").test)
    finally:
        torch.set_num_threads(threads)
    assert outcomes[0] == outcomes[1]


def test_a_worker_takes_the_cores_of_the_workers_that_have_ended_after_its_next_epoch():
    training = multiprocessing.get_context("spawn").Value("i", 2)
    share, threads = CoreShare(training, cores=4), torch.get_num_threads()
    sender = SharingSender(multiprocessing.get_context("spawn").Queue(), 0, share)
    try:
        assert share.threads() == 2
        sender.epoch_finished(1, 10, {})
        assert torch.get_num_threads() == 2
        share.leave()  # the other worker took its last cell's end: one left training
        assert share.threads() == 4 and torch.get_num_threads() == 2
        sender.epoch_finished(2, 10, {})
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(threads)


def test_plugins_registered_in_this_process_keep_their_runs_here(register_plugin, tracking_uri, experiment):
    register_plugin(DegreePlugin(), "degree-plugin")
    with pytest.raises(UserError, match="method 'degree-align' comes from plugin 'degree-plugin', registered in this"):
        api.plan_sweep(["degree-align"], [TINY_SPEC], [0.3, 0.5], tracking_uri=tracking_uri, workers=2)
    plan = api.plan_sweep(["degree-align"], [TINY_SPEC], [0.3, 0.5], tracking_uri=tracking_uri, workers=None)
    assert isinstance(plan.executor, InProcess)


class KillsTheWorkers(Observer):
    """At a run's first epoch, kills every worker process (SIGKILL): what an out-of-memory kill looks like."""

    def epoch_finished(self, epoch, epochs, latest):
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)


def test_a_worker_that_dies_fails_its_run_and_the_runs_it_would_have_trained(tracking_uri, experiment):
    plan = api.plan_sweep(["gcn-align"], [TINY_SPEC], [0.3, 0.5], epochs=50, tracking_uri=tracking_uri,
                          experiment=experiment, workers=1)  # fmt: skip
    ended, workers = {}, WorkerProcesses(workers=1)

    def record(cell, result):
        ended[cell.index] = result

    try:
        workers.run(plan.cells(), lambda cell: KillsTheWorkers(), record, SweepContext())
    finally:
        workers.close()
    errors = sorted(result.error for result in ended.values())
    assert errors == ["no worker process was left to train it", "the worker process died (exit code -9)"]


def sweep_in_training(tmp_path) -> tuple[subprocess.Popen, MlflowTracker, list[int]]:
    """A two-worker sweep of endless runs, once both have been validated; with its store and worker processes."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "mmea_bench", "run", "gcn-align", "--dataset", TINY_SPEC, "--ratios", "0.2,0.5",
               "--epochs", "100000", "--workers", "2", "--tracking-uri", store, "--experiment", "stop"]  # fmt: skip
    tracker = MlflowTracker(store, "stop")  # the store exists before the sweep writes to it
    sweep = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(1)
        frame = recorded_runs(tracker)
        if len(frame) == 2 and "valid_csls_mrr" in frame and frame["valid_csls_mrr"].notna().all():
            break
    workers = descendants(sweep.pid)
    assert len(workers) >= 2
    return sweep, tracker, workers


def test_workers_end_when_their_sweep_is_killed(tmp_path):
    sweep, _, workers = sweep_in_training(tmp_path)
    sweep.kill()  # no handler runs: the workers learn it from the kernel
    sweep.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [pid for pid in workers if alive(pid)] == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_workers_marks_their_runs_killed_and_leaves_no_process(tmp_path, stop):
    sweep, tracker, workers = sweep_in_training(tmp_path)
    sweep.send_signal(stop)
    output, _ = sweep.communicate(timeout=60)
    assert sweep.returncode != 0, output
    assert set(recorded_runs(tracker)["status"]) == {"KILLED"}, output
    time.sleep(1)
    assert [pid for pid in workers if alive(pid)] == []


@pytest.fixture
def hangups_delivered():
    """SIGHUP as a terminal session has it, also where the tests run under ``nohup`` (which ignores it)."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["ctrl-c", "sigterm", "sighup"])
@pytest.mark.usefixtures("hangups_delivered")
def test_ctrl_c_or_sigterm_inside_a_store_write_takes_effect_when_the_write_is_whole(tracker, stop):
    """An interrupted SQLite transaction would keep the store locked; Ctrl-C waits for the write to end, and so does
    SIGTERM where a command makes it an interrupt."""
    run_id = tracker.start_run("whole")
    written = []

    def write_interrupted_half_way():
        with stops_interrupt(), interrupts_deferred():
            written.append("first half")
            os.kill(os.getpid(), stop)
            time.sleep(0.1)  # the signal arrives here, mid-write
            written.append("second half")
            tracker.end_run(run_id, "KILLED")

    with pytest.raises(KeyboardInterrupt):
        write_interrupted_half_way()
    assert written == ["first half", "second half"]
    assert tracker.client.get_run(run_id).info.status == "KILLED"


def test_a_signal_deferred_by_a_write_that_fails_still_stops_the_command():
    with pytest.raises(KeyboardInterrupt), stops_interrupt(), interrupts_deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.1)
        raise RuntimeError("the write failed")


@pytest.mark.usefixtures("hangups_delivered")
def test_a_second_stop_signal_leaves_the_clean_up_of_the_first_alone():
    cleaned = []
    with pytest.raises(KeyboardInterrupt), stops_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.1)
        finally:
            os.kill(os.getpid(), signal.SIGHUP)  # a closed terminal often sends two
            time.sleep(0.1)
            cleaned.append("runs marked killed")
    assert cleaned == ["runs marked killed"]


def test_a_stop_signal_the_process_ignores_stays_ignored():
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with stops_interrupt():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.1)
    finally:
        signal.signal(signal.SIGHUP, previous)
