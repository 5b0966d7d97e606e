"""`tuigen demo`: its plan leaves every screen something real, and the runs screen says how far it is."""
from __future__ import annotations

import time

from tuigen import config as schema
from tuigen.experiments import KINDS
from tuigen.runner.demo import DEMO_TAG, FIGURES, PLAN, SMALL_FID_TAG, demo_status, plan
from tuigen.tui.app import TuigenApp


def _by_kind(kind: str):
    return [r for r in PLAN if r.kind == kind]


def test_every_config_of_the_plan_is_valid_full_and_tiny():
    for tiny in (False, True):
        for r in plan(tiny=tiny):
            cfg = schema.build(KINDS[r.kind].config, dict(r.config))  # a bad knob or value raises here
            if hasattr(cfg, "train_num_steps") and hasattr(cfg, "sample_every"):
                assert cfg.sample_every <= cfg.train_num_steps, r.name  # a grid before the end


def test_the_plan_leaves_every_screen_something_real():
    ddpms, cond, gans, dann = _by_kind("ddpm"), _by_kind("cond-ddpm"), _by_kind("dcgan"), _by_kind("dann")
    # sample grids from both diffusion kinds and a GAN
    assert ddpms and cond and gans
    # a denoising strip, drawn after training by demo-figures
    assert any(verb[0] == "strip" for r in ddpms for verb in r.after)
    # a scored FID with a small N, flagged in the runs' tags, on two runs that differ in one knob only
    scored = [r for r in ddpms if r.config.get("fid_every")]
    assert len(scored) == 2 and all(SMALL_FID_TAG in r.tags and r.config["fid_n"] <= 64 for r in scored)
    a, b = (r.config for r in scored)
    assert [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)] == ["lr"]
    assert all(r.config["fid_every"] <= r.config["train_num_steps"] for r in scored)
    # an accuracy score for the conditional run
    assert any(verb[0] == "accuracy" for verb in cond[0].after)
    # t-SNE plots and target accuracy
    assert dann[0].config["tsne_points"] > 0 and "target_acc" in dann[0].shows
    # the whole queue is sized for about three minutes on two cores
    assert sum(r.expected_s for r in (*PLAN, FIGURES)) <= 200


def _demo_runs(store, statuses, now, pace=1.0):
    runs = []
    for r, status in zip((*PLAN, FIGURES), statuses):
        run = store.create_run(r.kind, {}, name=r.name, tags=[DEMO_TAG], status=status)
        if status == "running":
            store.update_run(run.id, started_at=now - 10)
        if status in ("completed", "failed"):  # each took `pace` times its estimate
            store.update_run(run.id, started_at=now - 1000, ended_at=now - 1000 + pace * r.expected_s)
        if status == "queued":  # another host's: no queue here starts it
            store.update_run(run.id, launched_on="elsewhere")
        runs.append(run.id)
    return runs


def test_the_status_line_counts_runs_and_time_left(store):
    now = time.time()
    statuses = ["completed", "completed", "failed", "completed", "running", "queued", "queued", "queued"]
    _demo_runs(store, statuses, now)
    status = demo_status(store, now)
    left = (PLAN[4].expected_s - 10) + PLAN[5].expected_s + PLAN[6].expected_s + FIGURES.expected_s
    assert status.seconds_left == left
    assert status.text == f"demo: 4 of 8 done, 1 failed, about {round(left / 60)} min left"
    assert demo_status(store.__class__(f"sqlite:///{store.url.split('///')[1]}x"), now) is None  # no demo: no line


def test_time_left_follows_the_demos_real_pace(store):
    now = time.time()
    _demo_runs(store, ["completed"] * 4 + ["queued"] * 4, now, pace=3.0)  # a busy machine: 3x the estimate
    left = 3.0 * sum(r.expected_s for r in (*PLAN[4:], FIGURES))
    status = demo_status(store, now)
    assert abs(status.seconds_left - left) < 1e-6 and status.text.endswith(f"about {round(left / 60)} min left")


def test_the_status_line_when_all_are_done(store):
    _demo_runs(store, ["completed"] * 8, time.time())
    assert demo_status(store, time.time()).text == "demo: all 8 runs done: b board, v compare two selected runs"


async def test_the_runs_screen_shows_the_demo_line(store):
    _demo_runs(store, ["completed"] * 7 + ["queued"], time.time())
    app = TuigenApp(store)
    async with app.run_test(size=(100, 24)) as pilot:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            await pilot.pause(0.05)
            label = app.screen.query("#demo")
            if label and label.first().has_class("visible"):
                break
        await pilot.pause(0.1)  # laid out
        label = app.screen.query_one("#demo")
        assert str(label.render()) == f"demo: 7 of 8 done, about {_left(FIGURES.expected_s)} left"
        header = app.screen.query_one("Header").region
        assert label.region.height == 1 and header.bottom <= label.region.y < app.screen.query_one("#runs").region.y


def _left(seconds: float) -> str:
    return "1 min" if 30 < seconds < 60 else "half a minute" if seconds <= 30 else f"{round(seconds / 60)} min"


def test_a_reference_subset_is_spread_over_the_dataset_and_named_apart():
    from tuigen.data import load_dataset
    from tuigen.trained.provenance import reference_identity, reference_subset

    data = load_dataset("digits", 8, 1)
    images, identity = reference_subset(data, 64)
    assert len(images) == 64 and (images == data.images[::28][:64]).all()
    assert identity == reference_identity(data) + "/every28-first64"  # never mistaken for the whole set
    assert sorted(set(data.labels[::28][:64])) == list(range(10))  # every class is in it
    whole, same = reference_subset(data, 0)
    assert whole is data.images and same == reference_identity(data)
