"""Faults a long-running experiment manager meets: processes killed at the worst moment, a
terminal that goes away, a full disk, damaged files, a locked store. Each ends in a clear
error that names the file, nothing committed is lost, and runs and the TUI stay alive.

(test_runs.py covers kill -9 of a worker, SIGTERM + resume and pid reuse of our own pid.)
"""
from __future__ import annotations

import errno
import json
import os
import pty
import random
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import wait_for, wait_status

STEPS_SCRIPT = ("import time\n"
                "for i in range(1, {n} + 1):\n"
                "    print(f'step={{i}} loss={{1 / i:.4f}}', flush=True)\n"
                "    time.sleep({pause})\n")


def exec_argv(n: int = 30, pause: float = 0.1, *options: str) -> list[str]:
    """`tuigen exec` of a short python loop printing step=i loss=...: a run without torch."""
    return ["exec", *options, "--", sys.executable, "-c", STEPS_SCRIPT.format(n=n, pause=pause)]


def tuigen_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tuigen", *args]


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def dead(pid: int) -> bool:
    """Gone or a zombie (a reparented child that nobody reaped yet is as good as dead)."""
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return True


def reap(pid: int, timeout: float = 20.0) -> bool:
    """Wait for our child `pid` to exit; True if it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            return True
        time.sleep(0.05)
    return False


def spawn_in_pty(argv: list[str]) -> tuple[int, int]:
    """Start argv as if typed in an SSH session: a new session whose controlling terminal is
    a pty. Returns (pid, master fd); closing the master is the SSH connection dropping."""
    env = dict(os.environ, TERM="xterm-256color", TUIGEN_IMAGES="halfcell", COLUMNS="120", LINES="30")
    pid, master = pty.fork()
    if pid == 0:  # the child: only exec (this process may have threads)
        os.execve(argv[0], argv, env)
    return pid, master


def read_until(master: int, needle: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
    assert needle in seen, f"never saw {needle!r} in the terminal; got {seen[-500:]!r}"
    return seen


def drain(master: int, stop: threading.Event) -> None:
    """Keep reading a pty so a chatty program never blocks on a full terminal buffer."""
    while not stop.is_set():
        try:
            if select.select([master], [], [], 0.2)[0]:
                os.read(master, 65536)
        except OSError:
            return


# -- the processes around a run die; the run does not ----------------------------------
def test_kill_9_of_the_wrapper_and_of_the_tui_leaves_the_run_running(store, tmp_path):
    wrapper = subprocess.Popen(tuigen_cmd(*exec_argv(30, 0.1, "--follow")),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tui, master = spawn_in_pty(tuigen_cmd())
    stop = threading.Event()
    try:
        read_until(master, b"exec")  # the TUI is up and lists the run
        threading.Thread(target=drain, args=(master, stop), daemon=True).start()
        run = wait_for(lambda: (r := (store.list_runs() or [None])[0]) and r.step > 0 and r, what="the run to log")
        os.kill(wrapper.pid, signal.SIGKILL)
        os.kill(tui, signal.SIGKILL)
        assert wrapper.wait(10) == -signal.SIGKILL and reap(tui)
        run = wait_status(store, run.id, "completed", timeout=60)
    finally:
        stop.set()
        os.close(master)
    assert [p.step for p in store.metrics(run.id, "loss")] == list(range(1, 31))
    assert integrity(tmp_path / "runs.db") == "ok"


def test_ssh_hang_up_of_the_wrapper_and_of_the_tui_leaves_the_run_running(store, tmp_path):
    wrapper, w_master = spawn_in_pty(tuigen_cmd(*exec_argv(30, 0.1, "--follow")))
    tui, t_master = spawn_in_pty(tuigen_cmd())
    try:
        read_until(w_master, b"started")
        read_until(t_master, b"exec")
        run = wait_for(lambda: (r := (store.list_runs() or [None])[0]) and r.step > 0 and r, what="the run to log")
    finally:
        os.close(w_master)  # the SSH connection drops: both get SIGHUP
        os.close(t_master)
    assert reap(wrapper), "tuigen run --follow lingered after its terminal went away"
    assert reap(tui), "the TUI lingered after its terminal went away"
    run = wait_status(store, run.id, "completed", timeout=60)
    assert [p.step for p in store.metrics(run.id, "loss")] == list(range(1, 31))
    assert integrity(tmp_path / "runs.db") == "ok"


def test_a_pid_reused_by_another_program_marks_the_run_crashed_and_says_so(store):
    """test_runs.py fakes a start time on our own pid; here a real other program owns the pid."""
    from tuigen.runner.reaper import reconcile
    from tuigen.store import HOST

    other = subprocess.Popen(["sleep", "30"])
    try:
        run = store.create_run("classifier", {})
        worker_started = time.time() - 3600  # our worker started an hour ago and died since
        store.update_run(run.id, status="running", pid=other.pid, proc_start=worker_started, host=HOST)
        assert reconcile(store) == [run.id]
        run = store.get_run(run.id)
        assert run.status == "crashed"
        assert f"process {other.pid} is gone (the pid now belongs to another process, sleep)" in run.error
        assert other.poll() is None, "the other program was left alone"
    finally:
        other.kill()
        other.wait()


# -- checkpoints written while the process is stopped ----------------------------------
SAVE_SCRIPT = """
import collections, os, signal, sys
import torch
from tuigen.trained import checkpoint as ckpt
from tuigen.runner.worker import STOP, _install_stop_handlers

folder, sig, times = sys.argv[1], getattr(signal, sys.argv[2]), int(sys.argv[3])

class Signal:
    '''Pickled inside the real torch.save: the signal lands while the checkpoint is written.'''
    def __reduce__(self):
        for _ in range(times):
            os.kill(os.getpid(), sig)
        return (collections.OrderedDict, ())  # loads back (weights_only) as an empty dict

_install_stop_handlers()  # the worker's: first SIGTERM asks to stop, a second one stops now
ckpt.save_atomic({"step": 1, "w": torch.ones(3), "rng": ckpt.capture_rng()}, f"{folder}/ckpt-0000001.pt")
try:
    ckpt.save_atomic({"step": 2, "w": torch.zeros(3), "x": Signal()}, f"{folder}/ckpt-0000002.pt")
    print("saved", STOP.is_set())
except KeyboardInterrupt:
    print("interrupted")
"""


def save_under_signal(folder: Path, sig: str, times: int) -> subprocess.CompletedProcess:
    """Save checkpoint 1, then checkpoint 2 with `sig` sent `times` times in the middle."""
    return subprocess.run([sys.executable, "-c", SAVE_SCRIPT, str(folder), sig, str(times)], capture_output=True,
                          text=True, timeout=120)


def test_sigterm_during_a_checkpoint_write(tmp_path):
    import torch

    from tuigen.trained.checkpoint import load

    once, twice = tmp_path / "once", tmp_path / "twice"
    res = save_under_signal(once, "SIGTERM", 1)  # a stop request: the write finishes, then the run stops
    assert res.stdout.splitlines()[-1] == "saved True", res.stderr
    assert load(once / "ckpt-0000002.pt")["step"] == 2
    res = save_under_signal(twice, "SIGTERM", 2)  # stop now: the half-written file is abandoned
    assert res.stdout.splitlines()[-1] == "interrupted", res.stderr
    assert sorted(p.name for p in twice.iterdir()) == ["ckpt-0000001.pt"]  # no temp file left
    assert torch.equal(load(twice / "ckpt-0000001.pt")["w"], torch.ones(3))
    for folder in (once, twice):
        assert not list(folder.glob(".*tmp*"))


def test_kill_9_during_torch_save_keeps_the_previous_checkpoint_and_the_leftover_is_cleaned(store, tmp_path):
    import torch

    from tuigen.trained.checkpoint import load
    from tuigen.runner.context import TorchContext

    run = store.create_run("classifier", {})
    folder = Path(run.run_dir) / "checkpoints"
    res = save_under_signal(folder, "SIGKILL", 1)
    assert res.returncode == -signal.SIGKILL
    leftover = list(folder.glob(".ckpt-0000002.pt.tmp-*"))
    assert len(leftover) == 1, "the kill landed mid-write"
    assert torch.equal(load(folder / "ckpt-0000001.pt")["w"], torch.ones(3))

    ctx = TorchContext(store, run.id, run.run_dir, None, device=torch.device("cpu"))
    assert ctx.latest_checkpoint() == folder / "ckpt-0000001.pt"  # the temp file is ignored...
    assert ctx.load_checkpoint()["step"] == 1  # ...and removed when the run resumes
    assert not leftover[0].exists()


# -- a full disk ------------------------------------------------------------------------
@contextmanager
def small_tmpfs(where: Path, size: str = "2m"):
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs to fill up (needs root / CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder: Path, leave: int = 0) -> Path:
    """Write a filler file until the disk is full (or only `leave` bytes remain)."""
    filler = folder / "filler"
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(filler, "wb") as f:
        try:
            f.write(b"\0" * max(0, free - leave))
            f.flush()
            os.fsync(f.fileno())
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


# -- many writers, some killed mid-write -----------------------------------------------
WRITER = """
import sys, tuigen
run = tuigen.init(project="storm", name=sys.argv[1])
print("run", run.id, flush=True)
for i in range(4000):
    run.log({"loss": i * 0.5, "acc": 1.0}, step=i)
    if i % 100 == 99:
        run._rec.flush()  # committed: say so, so the test knows what must survive
        print("committed", i, flush=True)
run.finish()
print("finished", flush=True)
"""


def test_16_writers_with_random_kill_9_lose_no_committed_point(store, tmp_path):
    from tuigen.runner.reaper import reconcile

    Path("writer.py").write_text(WRITER)
    rng = random.Random(7)
    procs = [subprocess.Popen([sys.executable, "writer.py", f"w{i}"], stdout=subprocess.PIPE, text=True)
             for i in range(16)]
    victims = {i: rng.randint(1, 20) for i in rng.sample(range(16), 8)}  # writer -> commits before its kill
    lines: dict[int, list[str]] = {i: [] for i in range(16)}

    def watch(i: int) -> None:
        for line in procs[i].stdout:
            lines[i].append(line.split())
            if i in victims and line.startswith("committed") and int(line.split()[1]) // 100 + 1 >= victims[i]:
                time.sleep(rng.random() * 0.005)  # somewhere in the next batch, maybe mid-transaction
                procs[i].kill()

    watchers = [threading.Thread(target=watch, args=(i,)) for i in range(16)]
    for t in watchers:
        t.start()
    codes = [p.wait(timeout=150) for p in procs]
    for t in watchers:
        t.join()
    assert sorted(i for i, c in enumerate(codes) if c == -signal.SIGKILL) == sorted(victims)
    assert all(c == 0 for i, c in enumerate(codes) if i not in victims)

    reconcile(store)
    for i in range(16):
        run_id = int(lines[i][0][1])
        committed = max((int(w[1]) for w in lines[i] if w[0] == "committed"), default=-1)
        steps = [p.step for p in store.metrics(run_id, "loss")]
        assert steps == list(range(len(steps))), f"writer {i}: a gap or a duplicate"
        assert len(steps) > committed, f"writer {i} committed step {committed} but only {len(steps)} are stored"
        assert store.summary(run_id)["loss"].count == len(steps)
        assert store.get_run(run_id).status == ("crashed" if i in victims else "completed")
        if i not in victims:
            assert len(steps) == 4000
    assert integrity(tmp_path / "runs.db") == "ok"


def test_disk_full_during_metric_writes_is_a_clear_error_and_the_points_are_kept_for_a_retry(tmp_path):
    from tuigen.runner.recorder import Recorder
    from tuigen.store import Store, StoreError

    with small_tmpfs(tmp_path / "disk") as disk:
        store = Store(f"sqlite:///{disk / 'runs.db'}")
        run = store.create_run("script", {}, status="running")
        rec = Recorder(store, run.id, run.run_dir)  # what tuigen.init and every worker log through
        rec.log({"loss": 1.0}, step=0)
        rec.flush()
        filler = fill(disk)
        logged = 0
        with pytest.raises(StoreError, match=rf"the store {disk / 'runs.db'} cannot grow: no space left on device"):
            for logged in range(1, 30_001):  # more than the WAL can take without growing
                rec.log({"loss": 1.0 / logged}, step=logged)  # flushes every 2000 points
            rec.flush()
        filler.unlink()  # the user frees space; the points were kept and the next flush writes them
        rec.flush()
        assert [p.step for p in store.metrics(run.id, "loss")] == list(range(logged + 1))
        store.close()
        assert integrity(disk / "runs.db") == "ok"


def test_disk_full_under_a_running_worker_is_recorded_on_the_run(cli, tmp_path, monkeypatch):
    """The store's disk fills while an exec run logs: the worker says so in its log, and once
    space is back the next tuigen command records it on the run."""
    from tuigen.store import Store

    with small_tmpfs(tmp_path / "disk") as disk:
        monkeypatch.setenv("TUIGEN_DB", f"sqlite:///{disk / 'runs.db'}")
        monkeypatch.setenv("TUIGEN_RUNS_DIR", str(tmp_path / "runs"))  # output.log on a disk with room
        store = Store()
        code, out, err = cli(*exec_argv(100_000, 0.001, "--json"))
        assert code == 0, err
        run_id = json.loads(out)["id"]
        wait_for(lambda: store.get_run(run_id).step > 0, what="the run to log")
        filler = fill(disk)
        wait_for(lambda: dead(store.get_run(run_id).pid), timeout=60, what="the worker to stop on the full disk")
        before = store.summary(run_id)["loss"].count
        filler.unlink()
        assert cli("ls")[0] == 0  # any tuigen command reconciles
        run = store.get_run(run_id)
        assert run.status == "crashed"
        assert "no space left on device" in run.error
        assert "the store could not record it" in run.error
        assert store.summary(run_id)["loss"].count == before == len(store.metrics(run_id, "loss"))
        store.close()
        assert integrity(disk / "runs.db") == "ok"


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(store, tmp_path):
    import torch

    from tuigen.trained.checkpoint import CheckpointError, load
    from tuigen.runner.context import TorchContext

    with small_tmpfs(tmp_path / "disk") as disk:
        run = store.create_run("classifier", {})
        ctx = TorchContext(store, run.id, disk / "run", None, device=torch.device("cpu"))
        first = ctx.save_checkpoint({"w": torch.ones(1000)}, step=1)
        filler = fill(disk)
        with pytest.raises(CheckpointError, match=r"could not write checkpoint .*ckpt-0000002.pt: No space left"):
            ctx.save_checkpoint({"w": torch.zeros(100_000)}, step=2)
        assert torch.equal(load(first)["w"], torch.ones(1000))
        assert [p.name for p in (disk / "run" / "checkpoints").iterdir()] == [first.name]  # no temp file
        assert [a.step for a in store.artifacts(run.id, kind="checkpoint")] == [1]
        filler.unlink()
        assert load(ctx.save_checkpoint({"w": torch.zeros(100_000)}, step=2))["step"] == 2


def test_disk_full_before_a_workers_first_checkpoint_fails_the_run_clearly(store, tmp_path, monkeypatch):
    from tuigen import config as schema
    from tuigen.experiments import get_kind
    from tuigen.runner.worker import execute
    from tuigen.store import Store

    with small_tmpfs(tmp_path / "disk") as disk:
        monkeypatch.setenv("TUIGEN_RUNS_DIR", str(disk))
        on_disk = Store(store.url)
        cfg = schema.build(get_kind("classifier").config, dict(dataset="digits", width=8, batch_size=16,
                                                               train_num_steps=10, checkpoint_every=5))
        run = on_disk.create_run("classifier", schema.to_json(cfg), total_steps=10)
        fill(disk, leave=16_384)  # room for the model summary, not for a checkpoint
        assert execute(on_disk, run.id) == 1  # the worker's own code path, in this process
        run = on_disk.get_run(run.id)
        on_disk.close()
    assert run.status == "failed"
    assert f"could not write checkpoint {run.run_dir}/checkpoints/ckpt-0000005.pt: No space left on device" in run.error


# -- damaged files ----------------------------------------------------------------------
def damaged_checkpoint(path: Path, step: int) -> Path:
    """A real checkpoint cut in half, as a crashed copy or a full disk elsewhere leaves it."""
    import torch

    from tuigen.trained.checkpoint import capture_rng, save_atomic

    save_atomic({"step": step, "model": {"w": torch.ones(64, 64)}, "rng": capture_rng()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_damaged_checkpoint_is_a_clear_error_on_resume_and_on_sample(cli, store, tmp_path):
    from tuigen import config as schema
    from tuigen.experiments import get_kind

    cfg = schema.build(get_kind("classifier").config, dict(dataset="digits", width=8, batch_size=16,
                                                           train_num_steps=10))
    run = store.create_run("classifier", schema.to_json(cfg), status="killed", total_steps=10)
    bad = damaged_checkpoint(Path(run.run_dir) / "checkpoints" / "ckpt-0000005.pt", 5)
    code, _, err = cli("resume", str(run.id))
    assert code == 0, err
    run = wait_status(store, run.id, "failed", timeout=90)
    last = run.error.strip().splitlines()[-1]
    assert f"checkpoint {bad} could not be loaded" in last and "damaged or not a tuigen checkpoint" in last

    ddpm = store.create_run("ddpm", json.dumps({"dataset": "mnist", "image_size": 8}), status="completed")
    bad = damaged_checkpoint(Path(ddpm.run_dir) / "checkpoints" / "ckpt-0000010.pt", 10)
    store.add_artifact(ddpm.id, "checkpoint", bad, key="checkpoint", step=10)
    code, out, err = cli("sample", str(ddpm.id), "-n", "2", "--out", str(tmp_path / "samples"))
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"tuigen: error: checkpoint {bad} could not be loaded")


def image_run(store) -> tuple[int, Path]:
    """A finished run with a good sample grid at step 10 and a damaged one at step 20."""
    import numpy as np
    from PIL import Image

    run = store.create_run("ddpm", "{}", name="pics", status="completed")
    folder = Path(run.run_dir) / "images"
    folder.mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "samples-0000010.png")
    good = (folder / "samples-0000010.png").read_bytes()
    bad = folder / "samples-0000020.png"
    bad.write_bytes(good[: len(good) // 2])  # a PNG cut short: the header reads, the pixels do not
    for step in (10, 20):
        store.add_artifact(run.id, "image", folder / f"samples-{step:07d}.png", key="samples", step=step)
    return run.id, bad


def test_a_damaged_image_is_reported_by_show(cli, store):
    run_id, bad = image_run(store)
    code, out, err = cli("show", str(run_id))
    assert code == 0, err
    flat = out.replace("\n", "")  # rich wraps long paths
    assert f"{bad}  (unreadable image (" in flat, out
    assert "samples-0000010.png  (" not in flat


async def test_a_damaged_image_leaves_the_tui_run_screen_alive(store):
    from textual.widgets import Label, TabbedContent

    from test_tui import wait_until
    from tuigen.tui.app import TuigenApp

    run_id, bad = image_run(store)
    app = TuigenApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_open_run(run_id)
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen" and app.screen.image_index == 1)
        app.screen.query_one(TabbedContent).active = "artifacts"
        holder = app.screen.query_one("#artifact-image")
        said = lambda: " ".join(str(w.render()) for w in holder.query(Label))  # noqa: E731
        await wait_until(pilot, lambda: f"cannot show {bad}: unreadable image" in said())
        await pilot.press("left_square_bracket")  # the good one still shows
        await wait_until(pilot, lambda: app.screen.image_index == 0 and holder.children and not said())
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: "unreadable image" in said())
        await pilot.pause(0.3)  # drawn a few times: nothing raised while rendering
        assert app.is_running


@pytest.fixture
def damaged_db(tmp_path):
    """runs.db of this test, removed afterwards (the teardown opens it to stop leftover workers)."""
    db = tmp_path / "runs.db"
    yield db
    for p in tmp_path.glob("runs.db*"):
        p.unlink()


def test_a_damaged_store_is_one_line_naming_the_file(cli, damaged_db):
    import tuigen

    db = damaged_db
    db.write_bytes(os.urandom(8192))  # not a database at all
    code, out, err = cli("ls")
    assert code == 1 and err == f"tuigen: error: the store {db} is damaged or not a tuigen store (file is not a database)\n"
    from tuigen.store import StoreError

    with pytest.raises(StoreError, match="is damaged or not a tuigen store"):
        tuigen.init(project="p")  # a script gets the same sentence
    res = subprocess.run(tuigen_cmd("ls"), capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr.count("\n") == 1 and str(db) in res.stderr


def test_a_store_damaged_inside_is_one_line_naming_the_file(cli, store, damaged_db):
    for i in range(20):
        run = store.create_run("script", {"i": i}, name=f"r{i}", status="completed")
        store.log_metrics(run.id, [("loss", s, 1.0, 0.0) for s in range(500)])
    store.close()
    db = damaged_db
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    data = bytearray(db.read_bytes())
    data[8192:] = os.urandom(len(data) - 8192)  # the schema page survives, the tables do not
    db.write_bytes(bytes(data))
    code, out, err = cli("ls")
    assert code == 1 and err.startswith(f"tuigen: error: the store {db} is damaged") and err.count("\n") == 1, err


# -- a locked store ---------------------------------------------------------------------
LOCKER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")  # e.g. a backup tool or an sqlite3 shell in a long transaction
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("COMMIT")
"""


@contextmanager
def locked(db: Path, seconds: float):
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"
    try:
        yield locker
    finally:
        locker.kill()
        locker.wait()


def test_a_locked_store_makes_writers_wait_then_succeed(cli, store, tmp_path):
    """Documented behaviour: a writer waits up to the busy timeout (30 s, TUIGEN_BUSY_TIMEOUT)
    for another process's lock, then goes ahead: nothing fails for a short lock."""
    keep, gone = (store.create_run("script", {}, status="completed").id for _ in range(2))
    with locked(tmp_path / "runs.db", 1.5) as locker:
        t0 = time.monotonic()
        code, _, err = cli("rm", "--yes", str(gone))
        waited = time.monotonic() - t0
        assert locker.wait(10) == 0
    assert code == 0, err
    assert waited > 0.5, "the delete did not wait for the lock"
    assert [r.id for r in store.list_runs()] == [keep]


def test_a_store_locked_past_the_busy_timeout_is_a_clear_error(cli, store, tmp_path, monkeypatch):
    run = store.create_run("script", {}, status="completed")
    monkeypatch.setenv("TUIGEN_BUSY_TIMEOUT", "0.3")
    with locked(tmp_path / "runs.db", 30):
        code, _, err = cli("rm", "--yes", str(run.id))
        assert code == 1
        assert err == (f"tuigen: error: the store {tmp_path / 'runs.db'} is locked by another process for longer "
                       "than the busy timeout (0.3 s); retry when it is done, or raise TUIGEN_BUSY_TIMEOUT\n")
        assert store.get_run(run.id).status == "completed"  # reads still work, nothing changed
    assert cli("rm", "--yes", str(run.id))[0] == 0  # the lock is gone: the same command now works


# -- a busy store never stops training (issue 11) -----------------------------------------
@contextmanager
def store_locked(db: Path, seconds: float):
    """Another process's write transaction held on `db` for `seconds` (like a sqlite3 shell
    in BEGIN IMMEDIATE, or a backup), released when the block ends or the time is up."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sqlite3, sys, time\n"
                               "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                               "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
                               "time.sleep(float(sys.argv[2])); c.execute('COMMIT')\n", str(db), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    try:
        yield holder
    finally:
        holder.wait(timeout=seconds + 30)


BUSY = 2.0  # TUIGEN_BUSY_TIMEOUT in these tests; each lock is held for 3x as long


def test_a_lock_held_mid_run_delays_the_writes_and_loses_nothing(cli, store, tmp_path, monkeypatch):
    """Found: with TUIGEN_BUSY_TIMEOUT=2, a BEGIN IMMEDIATE held for 6 s mid-run failed the run."""
    monkeypatch.setenv("TUIGEN_BUSY_TIMEOUT", str(BUSY))
    code, out, err = cli(*exec_argv(120, 0.05, "--json"))
    assert code == 0, err
    run_id = json.loads(out)["id"]
    wait_for(lambda: store.get_run(run_id).step >= 10, what="the first points")
    with store_locked(tmp_path / "runs.db", 3 * BUSY):
        time.sleep(3 * BUSY)
    run = wait_status(store, run_id, ["completed", "failed", "crashed"], timeout=120)
    assert run.status == "completed", run.error
    assert [p.step for p in store.metrics(run_id, "loss")] == list(range(1, 121))  # every point arrived
    busy = [e.message for e in store.events(run_id) if "store was busy" in e.message]
    assert len(busy) == 1 and "training went on" in busy[0]


def test_a_lock_held_at_launch_delays_the_start_and_the_run_still_runs(store, tmp_path, monkeypatch):
    """Found: held at launch, the worker died on its first transition: crashed without starting."""
    from tuigen.runner.launcher import worker_command, worker_env

    monkeypatch.setenv("TUIGEN_BUSY_TIMEOUT", str(BUSY))
    run = store.create_run("exec", {"command": f"{sys.executable} -c \"print('step=1 loss=0.5')\"", "cwd": ""},
                           status="starting")
    with store_locked(tmp_path / "runs.db", 3 * BUSY):
        worker = subprocess.Popen(worker_command(run.id), env=worker_env(store), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        time.sleep(3 * BUSY)
        assert worker.poll() is None and store.get_run(run.id).status == "starting"  # waiting, not dead
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out
    assert "the store is busy; retrying" in out
    done = store.get_run(run.id)
    assert done.status == "completed" and done.attempt == 1, done.error
    assert [p.value for p in store.metrics(run.id, "loss")] == [0.5]


# -- memory bounded by what is shown (issue 11) ---------------------------------------------
def test_logs_tail_reads_from_the_end_of_a_big_log(store, tmp_path):
    """Found: `tuigen logs RUN -n 1` on a 300 MB log took 1.9 GB: the whole file was read.
    (bench/memory_bounds.py measures the 300 MB case; 60 MB here keeps the suite quick.)"""
    run = store.create_run("exec", {}, status="completed")
    line = b"step=1 loss=0.5 some ordinary progress output of a long training run\n"
    with open(Path(run.run_dir) / "output.log", "wb") as f:
        for _ in range(60 * 2 ** 20 // (len(line) << 12)):
            f.write(line * (1 << 12))
        f.write(b"the last line\n")
    probe = ("import resource, subprocess, sys\n"
             "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, repr(done.stdout))\n")
    out = subprocess.run([sys.executable, "-c", probe, *tuigen_cmd("logs", str(run.id), "-n", "1")],
                         capture_output=True, text=True, timeout=120).stdout.split(maxsplit=1)
    assert out[1].strip() == repr("the last line\n")
    assert int(out[0]) < 100, f"peak RSS {out[0]} MiB for one line of a 60 MB log"
