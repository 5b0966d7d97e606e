"""Snapshots of the main screens (textual pinned exactly in pyproject, so a diff is a real
change). Update after an intended change with: pytest tests/test_tui_snapshots.py --snapshot-update"""
from __future__ import annotations

from test_tui import make_runs, table_ids, wait_until
from tuigen.tui.app import TuigenApp

SIZE = (120, 32)


def laid_out(pilot, selector: str) -> bool:
    """A DataTable sizes its columns on the next idle after rows change; a snapshot taken before
    that shows stale widths (seen under CI load). Private flags, but the only exact signal."""
    table = pilot.app.screen.query_one(selector)
    return not table._require_update_dimensions and not table._updated_cells


async def settle(pilot, selector: str) -> None:
    await wait_until(pilot, lambda: laid_out(pilot, selector))
    await pilot.pause(0.3)
    await wait_until(pilot, lambda: laid_out(pilot, selector))


def test_runs_screen(snap_compare, store):
    make_runs(store)

    async def ready(pilot):
        await wait_until(pilot, lambda: len(table_ids(pilot.app)) == 4)
        await settle(pilot, "#runs")

    assert snap_compare(TuigenApp(store), terminal_size=SIZE, run_before=ready)


def test_run_screen_curves(snap_compare, store):
    ids = make_runs(store)

    async def ready(pilot):
        pilot.app.action_open_run(ids["big"])
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "RunDetailScreen"
                         and set(pilot.app.screen.plots) == {"loss", "lr"})
        await pilot.pause(0.3)

    assert snap_compare(TuigenApp(store), terminal_size=SIZE, run_before=ready)


def test_leaderboard_screen(snap_compare, store):
    make_runs(store)

    async def ready(pilot):
        await pilot.press("b")
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "LeaderboardScreen"
                         and pilot.app.screen.query_one("#board").row_count == 3
                         and pilot.app.screen.datasets_loaded)  # both background loads have landed
        await settle(pilot, "#board")

    assert snap_compare(TuigenApp(store), terminal_size=SIZE, run_before=ready)
