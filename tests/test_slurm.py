"""The Slurm executor against a real single-node Slurm (scripts/services/slurm.sh), without
accounting: submit, kill, requeue on the early signal and resume, and Slurm's states mapped
onto run states. The heartbeat rule for runs on other hosts needs no Slurm."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, wait_for, wait_status
from tuigen.runner import reaper, slurm
from tuigen.runner.launcher import worker_command
from tuigen.runner.recorder import Recorder
from tuigen.runner.scheduler import schedule
from tuigen.store import COMPLETED, HOST, RUNNING, UNKNOWN, Store

SCRIPT = ROOT / "scripts" / "services" / "slurm.sh"
# Signalled as soon as its first points reach the store (within a second), a run of 300 steps
# is still far from its end.
CLASSIFIER = ("--dataset", "digits", "--train_num_steps", "300", "--device", "cpu", "--eval_every", "50",
              "--checkpoint_every", "1000")
TICKER = ("import time\nfor i in range(1, {n}):\n"
          "    print(f'step={{i}} loss={{1 / i:.4f}}', flush=True)\n    time.sleep({dt})\n")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real slurmctld + slurmd + munged for this session; SLURM_CONF points clients (and, via
    sbatch's --export=ALL, the jobs' workers) at it."""
    if os.geteuid() != 0:
        pytest.skip("slurm.sh starts slurmd, which must run as root")
    d = tmp_path_factory.mktemp("slurm")
    p = subprocess.run(["bash", str(SCRIPT), str(d)], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"could not start Slurm: {p.stderr.strip() or p.stdout.strip()}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = p.stdout.strip()
    yield d
    subprocess.run(["scancel", "--full", "--signal=KILL", "--user=root"], capture_output=True)
    try:  # let the job step daemons report and exit, so none outlives the cluster
        wait_for(lambda: not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip(), 15)
    except AssertionError:
        pass  # slurm.sh --stop kills what is left
    subprocess.run(["bash", str(SCRIPT), "--stop", str(d)], capture_output=True, timeout=30)
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def job_state(job_id: str) -> str:
    return slurm.query([job_id])[job_id].state


def submit(cli, *args: str) -> dict:
    code, out, err = cli(*args, "--executor", "slurm", "--json")
    assert code == 0, err
    return json.loads(out)


def ticker(n: int, dt: float) -> str:
    return f"{sys.executable} -c \"{TICKER.format(n=n, dt=dt)}\""


def test_submit_records_the_job_and_completes(slurm_cluster, cli, store):
    run = submit(cli, "run", "exec", "--command", ticker(21, 0.1), "--time", "00:05:00",
                 "--partition", "debug", "--sbatch-arg=--comment=tuigen-test")
    rid = run["id"]
    assert run["executor"] == "slurm" and run["external_id"].isdigit()
    assert run["resources"] == {"time": "00:05:00", "partition": "debug", "sbatch_args": ["--comment=tuigen-test"]}
    assert "#SBATCH --time=00:05:00" in open(store.get_run(rid).run_dir + "/slurm.sbatch").read()
    wait_status(store, rid, RUNNING, timeout=60)
    # Slurm starting the same worker a second time: refused by the worker's conditional transition.
    second = subprocess.run(worker_command(rid), capture_output=True, text=True, timeout=60,
                            env={**os.environ, "TUIGEN_DB": store.url})
    assert second.returncode == 0 and f"run {rid} is running; nothing to do" in second.stdout
    done = wait_status(store, rid, "completed", timeout=60)
    assert done.external_id == run["external_id"] and done.error is None and len(store.list_runs()) == 1
    assert [p.value for p in store.metrics(rid, "loss")] == pytest.approx([1 / i for i in range(1, 21)], abs=1e-4)
    assert wait_for(lambda: job_state(run["external_id"]) == "COMPLETED", 30, what="Slurm to show COMPLETED")


def test_kill_cancels_the_job_and_resume_submits_it_again(slurm_cluster, cli, store):
    run = submit(cli, "run", "classifier", *CLASSIFIER)
    rid, first = run["id"], run["external_id"]
    wait_for(lambda: store.get_run(rid).step >= 1, 90, interval=0.02, what="the first steps")
    code, out, err = cli("kill", rid, "--wait", "30")
    assert code == 0 and "cancelled" in out, err
    killed = store.get_run(rid)
    assert killed.status == "killed" and killed.step < 300  # SIGTERM from scancel: checkpointed, then out
    assert wait_for(lambda: job_state(first) == "CANCELLED", 30, what="Slurm to show CANCELLED")
    code, _, err = cli("resume", rid)
    assert code == 0, err
    second = store.get_run(rid).external_id
    assert second not in (None, first)
    wait_status(store, rid, "completed", timeout=90)
    assert f"resumed from checkpoint at step {killed.step}" in [e.message for e in store.events(rid)]
    points = [(p.key, p.step) for p in store.metrics(rid)]
    assert len(points) == len(set(points))


def test_early_signal_requeues_and_resumes_the_same_run(slurm_cluster, cli, store):
    run = submit(cli, "run", "classifier", *CLASSIFIER, "--signal-before", "60")
    rid, job = run["id"], run["external_id"]
    assert "#SBATCH --signal=B:USR1@60" in open(store.get_run(rid).run_dir + "/slurm.sbatch").read()
    wait_for(lambda: store.get_run(rid).step >= 1, 90, interval=0.02, what="the first steps")
    # What Slurm sends ahead of a time limit or preemption, to the batch step only.
    subprocess.run(["scancel", "--signal=USR1", "--batch", job], check=True)
    wait_status(store, rid, "queued", timeout=30)
    assert wait_for(lambda: job_state(job) == "PENDING", 30, what="the job back in Slurm's queue")
    # Slurm holds a requeued job for two minutes (BeginTime); as its admin, release it now.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    done = wait_status(store, rid, "completed", timeout=90)
    assert done.step == 300 and len(store.list_runs()) == 1
    events = [e.message for e in store.events(rid)]
    assert any("requeued" in m for m in events), events
    resumed = [m for m in events if m.startswith("resumed from checkpoint at step")]
    assert resumed and 1 <= int(resumed[0].split()[5]) < 300, events
    points = [(p.key, p.step) for p in store.metrics(rid)]
    assert len(points) == len(set(points))  # the replayed steps replaced, not duplicated
    assert sorted(s for k, s in points if k == "loss") == list(range(1, 301))
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in out


def test_slurm_states_reach_runs_without_accounting(slurm_cluster, cli, store):
    assert subprocess.run(["sacct", "-n"], capture_output=True).returncode != 0  # accounting is off here
    run = submit(cli, "run", "exec", "--command", "true", "--sbatch-arg=--hold")
    rid, job = run["id"], run["external_id"]
    schedule(store)  # the local scheduler leaves slurm runs to Slurm
    held = store.get_run(rid)
    assert job_state(job) == "PENDING" and held.status == "queued" and held.pid is None and held.host == ""
    subprocess.run(["scancel", job], check=True)  # cancelled behind tuigen's back
    wait_for(lambda: job_state(job) == "CANCELLED", 30, what="Slurm to show CANCELLED")
    lost = store.create_run("exec", {"command": "true"}, executor="slurm")  # a job Slurm forgot
    store.transition(lost.id, RUNNING, external_id="999999", host="gpu-node-7", heartbeat_at=time.time())
    reaper.reconcile(store)
    gone = store.get_run(rid)
    assert gone.status == "killed" and f"Slurm job {job}: cancelled in Slurm" in gone.error
    forgotten = store.get_run(lost.id)
    assert forgotten.status == "crashed" and "Slurm no longer knows job 999999" in forgotten.error


def test_slurm_state_map_covers_the_end_states():
    ends = {s: slurm.STATE_MAP[s][0] for s in ("COMPLETED", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                                              "CANCELLED", "TIMEOUT", "PREEMPTED", "REQUEUED", "PENDING")}
    assert ends == {"COMPLETED": "completed", "FAILED": "crashed", "NODE_FAIL": "crashed",
                    "OUT_OF_MEMORY": "failed", "CANCELLED": "killed", "TIMEOUT": "killed",
                    "PREEMPTED": "queued", "REQUEUED": "queued", "PENDING": "queued"}
    assert slurm.STATE_MAP["RUNNING"][0] is None  # a live job's run belongs to its worker


def test_stale_heartbeat_on_another_host_is_unknown_until_the_next_beat(store, monkeypatch):
    monkeypatch.setenv("TUIGEN_HEARTBEAT_TIMEOUT", "60")
    silent = store.create_run("exec", {"command": "x"})
    fresh = store.create_run("exec", {"command": "x"})
    local = store.create_run("exec", {"command": "x"})
    now = time.time()
    store.transition(silent.id, RUNNING, host="gpu-node-7", pid=4242, heartbeat_at=now - 120)
    store.transition(fresh.id, RUNNING, host="gpu-node-7", pid=4242, heartbeat_at=now - 5)
    store.transition(local.id, RUNNING, host=HOST, pid=os.getpid(), heartbeat_at=now - 120)
    reaper.reconcile(store)
    lost = store.get_run(silent.id)
    assert lost.status == UNKNOWN and "no heartbeat for 120 s from gpu-node-7" in lost.error
    assert store.get_run(fresh.id).status == RUNNING
    assert store.get_run(local.id).status == RUNNING  # here the pid decides, and it is alive
    rec = Recorder(store, silent.id, silent.run_dir)  # the worker's own heartbeat thread
    rec.start()
    try:
        back = wait_status(store, silent.id, RUNNING, timeout=10)
    finally:
        rec.close()
    assert back.error is None and any("heartbeats arrive again" in e.message for e in store.events(silent.id))


def test_executor_flags_are_checked(cli, monkeypatch, tmp_path):
    code, _, err = cli("run", "exec", "--command", "true", "--partition", "gpu")
    assert code == 2 and "--partition needs --executor slurm" in err
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    code, _, err = cli("run", "exec", "--command", "true", "--executor", "slurm")
    assert code == 2 and "--executor slurm needs sbatch on PATH" in err


def test_a_runs_folder_with_a_space_and_a_percent_sign(slurm_cluster, cli, tmp_path, monkeypatch):
    """Found: --output went into slurm.sbatch unquoted: a runs folder with a space or % broke it.
    And the script holds no store URL: the worker reads it from a file only its owner can read."""
    runs = tmp_path / "my runs 100%"
    monkeypatch.setenv("TUIGEN_RUNS_DIR", str(runs))
    store = Store()
    run = submit(cli, "run", "exec", "--command", ticker(4, 0.05))
    done = wait_status(store, run["id"], [COMPLETED, "failed", "crashed"], timeout=90)
    assert done.status == COMPLETED, done.error
    folder = Path(done.run_dir)
    assert folder.parent == runs and "loss=" in (folder / "output.log").read_text()
    script = (folder / "slurm.sbatch").read_text()
    assert f'#SBATCH --output="{str(runs).replace("%", "%%")}/' in script  # quoted, % doubled as sbatch wants
    assert store.url not in script and "sqlite" not in script
    secret = folder / ".store-url"
    assert secret.read_text() == store.url and oct(secret.stat().st_mode & 0o777) == "0o600"
