"""The TUI driven with Textual's Pilot: every screen and key path, on a real store."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tuigen.store import Store
from tuigen.tui.app import TuigenApp

T0 = 1_790_000_000.0


def make_runs(store: Store) -> dict[str, int]:
    """Three finished runs with metrics, images, a checkpoint file, events and scores."""
    ids = {}
    for name, lr, channels, fid in (("small", 1e-3, 16, 51.6), ("big", 1e-4, 64, 25.7), ("mid", 5e-4, 32, 30.0)):
        cfg = {"dataset": "mnist", "image_size": 16, "lr": lr, "channels": channels, "train_num_steps": 20}
        run = store.create_run("ddpm", json.dumps(cfg), name=name, dataset="mnist", total_steps=20, status="completed")
        store.update_run(run.id, started_at=T0, ended_at=T0 + 65, step=20, host="gpu-box", device="cuda:0")
        store.log_metrics(run.id, [(k, s, v / s, T0 + s) for s in range(1, 21) for k, v in (("loss", 1.0), ("val_loss", 1.5), ("lr", lr * s))])
        for step in (10, 20):
            img = Path(run.run_dir) / "images" / f"samples-{step:07d}.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((16, 16, 3), 40 * step % 255, np.uint8)).save(img)
            store.add_artifact(run.id, "image", img, key="samples", step=step)
        ckpt = Path(run.run_dir) / "checkpoints" / "ckpt-0000020.pt"
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_bytes(b"x")
        store.add_artifact(run.id, "checkpoint", ckpt, key="checkpoint", step=20)
        summary = Path(run.run_dir) / "model_summary.txt"
        summary.write_text("UNet  total params 1,234")
        store.add_artifact(run.id, "text", summary, key="model_summary")
        store.add_event(run.id, "possible mode collapse: diversity ratio 0.1", "warning")
        Path(run.run_dir, "output.log").write_text("tuigen worker: run started\nstep=20 loss=0.05\n")
        store.add_score(run.id, "fid", fid, {"n": 2048, "reference": "dataset:mnist/size16"}, step=20)
        ids[name] = run.id
    odd = store.create_run("ddpm", json.dumps({"lr": 2e-3}), name="odd", dataset="mnist", status="completed")
    store.add_score(odd.id, "fid", 3.0, {"n": 100, "reference": "dataset:mnist/size16"}, step=5)
    ids["odd"] = odd.id
    return ids


@pytest.fixture
def populated(store):
    return store, make_runs(store)


async def wait_until(pilot, predicate, timeout: float = 10.0):
    from textual.css.query import NoMatches

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except NoMatches:  # the screen has not composed yet
            pass
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


def table_ids(app) -> list[int]:
    t = app.screen.query_one("#runs")
    return [int(r.key.value) for r in t.ordered_rows]


async def test_runs_table_shows_every_run_and_updates_cells_in_place(backend_store):
    store, ids = backend_store, make_runs(backend_store)  # on SQLite and on PostgreSQL
    app = TuigenApp(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        table = app.screen.query_one("#runs")
        assert table_ids(app) == sorted(ids.values(), reverse=True)  # newest first
        table.move_cursor(row=2)
        new = store.create_run("classifier", "{}", name="fresh", dataset="digits", status="running", total_steps=100)
        store.log_metrics(new.id, [("loss", 7, 0.5, T0)])
        await wait_until(pilot, lambda: new.id in table_ids(app))
        assert table.cursor_row == 2 or app.screen.current_id() is not None  # cursor kept, table not rebuilt
        store.log_metrics(new.id, [("loss", 50, 0.25, T0)])
        await wait_until(pilot, lambda: "50/100" in str(table.get_cell(str(new.id), "progress")))
        assert str(table.get_cell(str(new.id), "loss")) == "0.25"
        assert str(table.get_cell(str(ids["big"]), "score")) == "FID 25.7"  # the stored score, by the board's rule


async def test_filter_sort_and_select(populated):
    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        await pilot.press("slash", "b", "i", "g")
        await wait_until(pilot, lambda: table_ids(app) == [ids["big"]])
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        await pilot.press("s")  # id -> name
        assert app.screen.sort_key == "name"
        names = [app.screen.rows[i].name for i in table_ids(app)]
        assert names == sorted(names)
        await pilot.press("space", "down", "space")
        assert len(app.screen.selected) == 2
        await pilot.press("v")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CompareScreen")


async def test_compare_shows_config_diff_curves_and_grids(populated):
    from tuigen.tui.screens.compare import CompareScreen

    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(CompareScreen([ids["small"], ids["big"]]))
        await wait_until(pilot, lambda: app.screen.query_one("#diff").row_count > 0)
        diff = app.screen.query_one("#diff")
        assert sorted(str(diff.get_row_at(i)[0]) for i in range(diff.row_count)) == ["channels", "lr"]
        await wait_until(pilot, lambda: len(app.screen.query(".plot")) == 3)  # loss, val_loss, lr shared
        assert "step 20" in str(app.screen.query_one("#grid-step").render())


async def test_open_run_shows_curves_config_log_events_and_images(populated):
    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        app.screen.query_one("#runs").move_cursor(row=table_ids(app).index(ids["big"]))
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen")
        screen = app.screen
        await wait_until(pilot, lambda: set(screen.plots) == {"loss", "lr"})  # val_loss shares the loss chart
        await pilot.press("m", "L")
        assert screen.smoothing and screen.log_scale
        await wait_until(pilot, lambda: "UNet" in str(screen.query_one("#model-summary").render()))
        assert screen.query_one("#config-table").row_count == 5
        await wait_until(pilot, lambda: screen.query_one("#events-table").row_count == 1)
        assert "step=20" in "\n".join(screen.query_one("#log-view").lines)
        await wait_until(pilot, lambda: screen.image_key == "samples" and screen.image_index == 1)
        await pilot.press("left_square_bracket")  # stepping is an Artifacts key: elsewhere it does nothing
        assert screen.image_index == 1
        await pilot.press("6", "left_square_bracket")
        assert screen.image_index == 0 and "step 10" in str(screen.query_one("#artifact-step").render())
        store.log_metrics(ids["big"], [("grad_norm", 21, 3.0, T0)])  # a new metric group appears live
        await wait_until(pilot, lambda: "grad_norm" in screen.plots)


async def test_checkpoint_actions_launch_linked_child_runs(populated, monkeypatch):
    monkeypatch.setenv("TUIGEN_SLOTS", "1")
    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_open_run(ids["big"])
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen" and app.screen.checkpoints)
        await pilot.press("S")
        await wait_until(pilot, lambda: any(r.parent_id == ids["big"] for r in store.list_runs()))
        child = next(r for r in store.list_runs() if r.parent_id == ids["big"])
        assert child.kind == "exec" and "sample" in json.loads(child.config)["command"]
        assert "--checkpoint 20" in json.loads(child.config)["command"]


async def test_kill_resume_and_delete_with_confirmation(populated):
    store, ids = populated
    queued = store.create_run("classifier", "{}", name="waiting", status="queued")
    app = TuigenApp(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: queued.id in table_ids(app))
        app.screen.query_one("#runs").move_cursor(row=table_ids(app).index(queued.id))
        await pilot.press("k")
        await wait_until(pilot, lambda: store.get_run(queued.id).status == "killed")
        await pilot.press("r")  # a finished exec-less classifier with no checkpoint: resumes from scratch
        await wait_until(pilot, lambda: store.get_run(queued.id).status in ("queued", "starting", "running", "completed", "failed"))
        from tuigen.runner import control

        control.stop(store, queued.id, force=True)
        app.screen.query_one("#runs").move_cursor(row=table_ids(app).index(ids["odd"]))
        await pilot.press("d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("n")
        assert ids["odd"] in [r.id for r in store.list_runs()]
        await pilot.press("d")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        await pilot.press("y")
        await wait_until(pilot, lambda: ids["odd"] not in [r.id for r in store.list_runs()])
        await wait_until(pilot, lambda: ids["odd"] not in table_ids(app))


async def test_new_run_form_is_generated_from_the_schema_with_inline_validation(store):
    from tuigen import config as schema
    from tuigen.experiments import KINDS

    app = TuigenApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "NewRunScreen")
        screen = app.screen
        screen.query_one("#kind").value = "classifier"
        names = {k.name for k in schema.knobs(KINDS["classifier"].config)}
        fields = lambda: {i.id[2:] for i in screen.query("Input") if i.id and i.id.startswith("f-")}  # noqa: E731
        # the form is rebuilt after the kind changes: the previous kind's fields go first
        await wait_until(pilot, lambda: screen.kind == "classifier" and fields() == names)
        lr = screen.query_one("#f-lr")
        lr.value = "-1"
        await wait_until(pilot, lambda: "--lr must be > 0" in str(screen.query_one("#e-lr").render()))
        lr.value = "1e-3 | 2e-3"
        await wait_until(pilot, lambda: str(screen.query_one("#e-lr").render()) == "")
        screen.query_one("#f-train_num_steps").value = "3"
        screen.query_one("#f-width").value = "4"
        screen.query_one("#max-parallel").value = "1"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(store.list_runs()) == 2, timeout=20)
        runs = store.list_runs()
        assert {json.loads(r.config)["lr"] for r in runs} == {1e-3, 2e-3}
        assert runs[0].sweep_id is not None and runs[0].sweep_id == runs[1].sweep_id


async def test_clone_and_edit_prefills_the_form(populated):
    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        app.screen.query_one("#runs").move_cursor(row=table_ids(app).index(ids["big"]))
        await pilot.press("c")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "NewRunScreen" and len(app.screen.query("Input")) > 10)
        assert app.screen.query_one("#f-channels").value == "64"
        assert app.screen.query_one("#f-lr").value == "0.0001"


async def test_leaderboard_ranks_within_one_provenance(populated):
    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("b")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen")
        table = app.screen.query_one("#board")
        await wait_until(pilot, lambda: table.row_count == 3)
        assert [int(table.get_row_at(i)[1]) for i in range(3)] == [ids["big"], ids["mid"], ids["small"]]
        header = str(app.screen.query_one("#board-provenance").render())
        assert "n=2048" in header and "not ranked here" in header
        await pilot.press("p")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert int(table.get_row_at(0)[1]) == ids["odd"]


async def test_system_help_and_palette(store):
    app = TuigenApp(store)
    async with app.run_test(size=(80, 24)) as pilot:  # works at 80x24
        await pilot.press("y")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SystemScreen")
        await wait_until(pilot, lambda: "CPU" in str(app.screen.query_one("#cpu-text").render()))
        assert "GPU" in str(app.screen.query_one("#gpu-text").render())
        await pilot.press("escape", "question_mark")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen")
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
        await pilot.press(*"Leaderboard")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen")


async def test_a_poll_that_lands_after_its_screen_closed_is_dropped(populated):
    """A worker's result that arrives after its screen was closed is dropped and the app lives
    on. (CI once saw the same race during app shutdown: a runs poll landing on a screen whose
    widgets were already pruned failed its worker with NoMatches and took the app down; that
    moment cannot be hit on purpose, so deliver() also checks for a screen being pruned.)"""
    from tuigen.reports.leaderboard import leaderboard
    from tuigen.tui.delivery import deliver

    store, _ = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("b")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen")
        closed = app.screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunListScreen")
        board = leaderboard(store, "fid")
        calls = []
        # as the screens' pollers do: a thread worker hands its result over (an exception in
        # the handler fails the worker, and a failed worker takes the app down)
        late = app.run_worker(lambda: deliver(closed, lambda b: calls.append(closed.show(b)), board), thread=True)
        await late.wait()
        assert calls == [] and app._exception is None
        live = app.screen  # a screen still on show does get its result
        await app.run_worker(lambda: deliver(live, calls.append, "fresh"), thread=True).wait()
        assert calls == ["fresh"]


def _grid(run, step: int) -> Path:
    img = Path(run.run_dir) / "images" / f"samples-{step:07d}.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((42, 42, 3), step, np.uint8)).save(img)
    return img


async def test_number_keys_switch_tabs_shown_in_footer_help_and_palette(populated):
    from textual.widgets import Footer, Markdown, TabbedContent

    from tuigen.tui.screens.help import HelpScreen

    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_open_run(ids["big"])
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen")
        screen = app.screen
        await pilot.pause(0.2)
        assert type(app.focused).__name__ == "ContentTabs"  # the tab bar has focus first
        tabs = screen.query_one(TabbedContent)
        for key, pane in zip("213456", ("config", "curves", "system", "log", "events", "artifacts")):
            await pilot.press(key)
            assert tabs.active == pane
        footer_keys = [str(k.key_display or k.key) for k in screen.query_one(Footer).query("FooterKey")]
        assert set("123456") <= set("".join(footer_keys)) and "z" in footer_keys  # z shown on Artifacts
        await pilot.press("1")
        await pilot.pause(0.1)
        assert "z" not in [k.key for k in screen.query_one(Footer).query("FooterKey")]  # an Artifacts key only
        titles = [c.title for c in app.get_system_commands(screen)]
        assert {"Curves tab (1)", "Artifacts tab (6)"} <= set(titles)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen))
        help_text = app.screen.query_one(Markdown).source
        assert "| `1` | Curves tab |" in help_text and "| `6` | Artifacts tab |" in help_text
        assert "| `z` | Fit/1:1 |" in help_text


async def test_artifacts_follow_a_live_run_unless_stepped_back(store):
    """Repro: a run that finished with three grids showed 1/2 until stepped."""
    from tuigen.tui.widgets.picture import Picture

    run = store.create_run("ddpm", "{}", name="live", dataset="mnist", total_steps=30, status="running")
    store.add_artifact(run.id, "image", _grid(run, 10), key="samples", step=10)
    app = TuigenApp(store)
    async with app.run_test(size=(120, 36)) as pilot:
        app.action_open_run(run.id)
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen")
        screen = app.screen
        label = lambda: str(screen.query_one("#artifact-step").render())  # noqa: E731
        await pilot.press("6")
        await wait_until(pilot, lambda: "(1/1;" in label())
        store.add_artifact(run.id, "image", _grid(run, 20), key="samples", step=20)
        await wait_until(pilot, lambda: "step 20  (2/2;" in label())  # on the newest: follows
        await pilot.press("left_square_bracket")
        assert "step 10  (1/2;" in label()
        store.add_artifact(run.id, "image", _grid(run, 30), key="samples", step=30)
        store.add_artifact(run.id, "image", _grid(run, 30), key="strip", step=30)  # a new key as well
        await wait_until(pilot, lambda: "(1/3;" in label())  # stepped back: stays on step 10
        assert screen.query_one("#artifact-key").value == "samples"  # new keys keep the choice
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert "step 30  (3/3;" in label()
        store.update_run(run.id, status="completed")
        picture = screen.query_one(Picture)
        assert picture.region.height > 10 and picture.drawn_cells[1] == picture.content_size.height  # fills it


async def test_compare_at_120x36_shows_diff_curves_and_grids_without_scrolling(populated):
    from tuigen.tui.screens.compare import CompareScreen
    from tuigen.tui.widgets.picture import Picture

    store, ids = populated
    app = TuigenApp(store)
    async with app.run_test(size=(120, 36)) as pilot:
        app.push_screen(CompareScreen([ids["small"], ids["big"]]))
        await wait_until(pilot, lambda: len(app.screen.query(Picture)) == 2 and len(app.screen.query(".plot")) == 3)
        await pilot.pause(0.2)
        screen = app.screen
        assert not screen.query_one("#compare-loading").display  # said while loading, gone now
        visible = screen.region
        diff = screen.query_one("#diff")
        assert diff.region.height >= diff.row_count + 1 and visible.contains_region(diff.region)  # header + rows
        assert visible.contains_region(screen.query(".plot").first().region)
        for picture in screen.query(Picture):
            assert visible.contains_region(picture.region) and picture.drawn_cells[1] >= 8
        focused = app.focused
        await pilot.press("tab")
        assert type(app.screen).__name__ == "CompareScreen" and app.focused is not focused  # focus, nothing else


def test_pictures_fit_their_pane_enlarge_nearest_and_reduce_smoothly():
    from tuigen.tui.widgets.picture import fitted_cells, natural_cells, scaled_to

    half_block = (1, 2)  # a character cell's shape: twice as tall as wide
    assert fitted_cells((42, 42), (120, 22), half_block) == (44, 22)  # height-bound
    assert fitted_cells((42, 42), (30, 40), half_block) == (30, 15)  # width-bound
    assert fitted_cells((300, 100), (120, 30), (10, 20)) == (120, 20)  # Kitty: 10x20 px cells
    assert natural_cells((42, 42), (1, 2)) == (42, 21)
    checker = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8))
    assert set(np.asarray(scaled_to(checker, (8, 8))).ravel()) == {0, 255}  # enlarged: no new shades
    stripes = Image.fromarray(np.tile(np.array([0, 255], np.uint8), (100, 50)))
    reduced = np.asarray(scaled_to(stripes, (10, 10)))
    assert 100 < reduced.mean() < 155 and reduced.std() < 30  # smoothed to grey, not aliased to 0/255
