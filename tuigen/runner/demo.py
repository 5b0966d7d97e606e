"""`tuigen demo`: small real runs that leave every screen something to show, in about three
minutes on two CPU cores, and the line the runs screen shows while they go.

What each screen gets: the runs table and live curves (all of them), sample grids (the two
ddpm runs, cond-ddpm, dcgan), a denoising strip (the first ddpm run, drawn after training),
the board and compare screen with two rows (two ddpm runs that differ only in lr, both scored
by a small periodic FID, flagged in their tag), an accuracy score (cond-ddpm, scored after
training), t-SNE plots and target accuracy (dann). The runs go through the ordinary queue; the
last one, `demo-figures`, waits for the others and then draws and scores what training does not.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..store import ACTIVE, COMPLETED

if TYPE_CHECKING:
    from ..store import Store

DEMO_TAG = "demo"
SMALL_FID_TAG = "fid-n32"  # FID of 32 samples against 64 digits: for comparing these runs only

# digits at 8x8 train in seconds on a CPU; the FID references 64 of them (every 28th)
_DDPM = {"dataset": "digits", "image_size": 8, "channels": 16, "dim_mults": (1, 2), "num_res_blocks": 1,
         "attn_resolutions": (), "timesteps": 100, "batch_size": 32, "train_num_steps": 200, "sample_every": 50,
         "sample_steps": 10, "checkpoint_every": 200, "num_samples": 16, "log_every": 5}
_FID = {"fid_every": 200, "fid_n": 32, "fid_ref_n": 64, "fid_method": "eigh"}
_EXEC = ("import math, time\n"
         "for i in range(1, 41):\n"
         "    print(f'step={i} loss={math.exp(-i / 12):.4f} acc={1 - math.exp(-i / 10):.3f}', flush=True)\n"
         "    time.sleep(0.1)\n")


@dataclass(frozen=True)
class DemoRun:
    name: str
    kind: str
    config: dict
    expected_s: float  # estimated for 2 idle CPU cores; the status line rescales it by the demo's real pace
    tags: tuple[str, ...] = ()
    after: tuple[tuple[str, ...], ...] = ()  # tuigen verbs demo-figures runs on it ("{id}": its id)
    shows: tuple[str, ...] = ()  # what it leaves on which screen (the plan's test checks them)


PLAN: tuple[DemoRun, ...] = (
    DemoRun("demo-ddpm-lr2e-3", "ddpm", {**_DDPM, **_FID, "lr": 2e-3}, 30, (SMALL_FID_TAG,),
            after=(("strip", "{id}", "--timesteps", "99,75,50,25,10,0"),),
            shows=("samples", "fid", "denoising_strip", "compare")),
    DemoRun("demo-ddpm-lr5e-4", "ddpm", {**_DDPM, **_FID, "lr": 5e-4}, 20, (SMALL_FID_TAG,),
            shows=("samples", "fid", "compare")),
    DemoRun("demo-cond-ddpm", "cond-ddpm", {**_DDPM, "lr": 2e-3, "num_samples": 20}, 15,
            after=(("accuracy", "{id}", "--per_class", "2", "--steps", "10", "--guidance", "2"),),
            shows=("samples", "accuracy")),
    DemoRun("demo-dcgan", "dcgan", {"dataset": "digits", "image_size": 16, "batch_size": 32, "train_num_steps": 200,
                                    "sample_every": 50, "checkpoint_every": 200, "num_samples": 16,
                                    "latent_dim": 32, "g_width": 16, "d_width": 16}, 15, shows=("samples",)),
    DemoRun("demo-dann", "dann", {"source": "mnist", "target": "mnist-m", "mode": "dann", "image_size": 16,
                                  "epochs": 2, "steps_per_epoch": 30, "batch_size": 32, "width": 16,
                                  "tsne_points": 100}, 30, shows=("tsne", "target_acc")),
    DemoRun("demo-classifier", "classifier", {"dataset": "digits", "image_size": 8, "train_num_steps": 150,
                                              "eval_every": 50}, 10, shows=("val_acc",)),
    DemoRun("demo-exec", "exec", {"command": f"{sys.executable} -c \"{_EXEC}\""}, 6, shows=("curves",)),
)
FIGURES = DemoRun("demo-figures", "exec", {}, 45, shows=("denoising_strip", "accuracy"))  # its command: figures_command
SHRINK = {"train_num_steps": 20, "sample_every": 10, "checkpoint_every": 20, "fid_every": 20, "epochs": 1,
          "steps_per_epoch": 5, "tsne_points": 40, "eval_every": 10}  # `--tiny`: the same plan in seconds (the tests)


def plan(*, tiny: bool = False) -> tuple[DemoRun, ...]:
    """The demo's training runs; `tiny` shrinks every loop (the test suite's version)."""
    if not tiny:
        return PLAN
    return tuple(DemoRun(r.name, r.kind, {k: SHRINK.get(k, v) for k, v in r.config.items()},
                         r.expected_s, r.tags, r.after, r.shows) for r in PLAN)


def figures_command(run_ids: list[int]) -> str:
    """demo-figures' command: wait for the demo's runs, then run each one's `after` verbs."""
    return f"{sys.executable} -m tuigen demo --figures {','.join(map(str, run_ids))}"


def launch_demo(store: Store, *, tiny: bool = False) -> list[int]:
    """Queue the plan and demo-figures after it; the queue runs them as slots free up."""
    from .control import launch

    ids = [launch(store, r.kind, dict(r.config), name=r.name, tags=[DEMO_TAG, *r.tags]) for r in plan(tiny=tiny)]
    ids.append(launch(store, "exec", {"command": figures_command(ids)}, name=FIGURES.name, tags=[DEMO_TAG]))
    return ids


# -- what the runs screen says while the demo goes -------------------------------------------
@dataclass
class DemoStatus:
    total: int
    done: int
    failed: int
    seconds_left: float
    names: list[str] = field(default_factory=list)  # the runs still to finish

    @property
    def text(self) -> str:
        """"demo: 4 of 9 done, about 1 min left" (a failure is counted and named by number)."""
        failed = f", {self.failed} failed" if self.failed else ""
        if self.done == self.total:
            return f"demo: all {self.total} runs done{failed}: b board, v compare two selected runs"
        return f"demo: {self.done} of {self.total} done{failed}, about {_minutes(self.seconds_left)} left"


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return "1 min" if seconds > 30 else "half a minute"
    return f"{round(seconds / 60)} min"


def demo_status(store: Store, now: float) -> DemoStatus | None:
    """Where the newest demo stands, or None when the store has no demo runs. Time left: each
    unfinished run's expected time, scaled by how the finished ones compared with theirs (a
    busy machine is slower than the estimate), less what a running one has already had."""
    runs = store.list_runs(tag=DEMO_TAG, limit=len(PLAN) + 1)  # the newest demo's runs
    if not runs:
        return None
    expected = {r.name: r.expected_s for r in (*PLAN, FIGURES)}
    finished = [r for r in runs if r.status not in ACTIVE]
    timed = [r for r in finished if r.started_at and r.ended_at]
    pace = (sum(r.ended_at - r.started_at for r in timed) / sum(expected.get(r.name, 30.0) for r in timed)
            if timed else 1.0)
    left = 0.0
    for r in runs:
        if r.status in ACTIVE:
            ran = now - r.started_at if r.started_at else 0.0
            left += max(expected.get(r.name, 30.0) * pace - ran, 5.0)
    return DemoStatus(len(runs), len(finished), sum(r.status != COMPLETED for r in finished), left,
                      [r.name for r in runs if r.status in ACTIVE])
