"""Regenerate the README's screenshots (assets/screens/*.svg) from the real screens.

    .venv/bin/python scripts/screenshots.py

Uses the same example store as the TUI tests (three finished ddpm runs with curves,
sample grids, scores of two provenances), in a temporary folder.
"""
from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
OUT = ROOT / "assets" / "screens"


async def shoot() -> None:
    from test_tui import make_runs, table_ids, wait_until

    from tuigen.store import Store
    from tuigen.tui.app import TuigenApp
    from tuigen.tui.screens.compare import CompareScreen

    os.chdir(tempfile.mkdtemp())
    store = Store("sqlite:///runs.db")
    ids = make_runs(store)
    app = TuigenApp(store)
    async with app.run_test(size=(130, 34)) as pilot:
        async def save(name: str) -> None:
            await pilot.pause(0.4)
            app.save_screenshot(f"{name}.svg", str(OUT))
            print(f"wrote {OUT / name}.svg")

        await wait_until(pilot, lambda: len(table_ids(app)) == 4)
        await save("runs")
        app.action_open_run(ids["big"])
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunDetailScreen" and len(app.screen.plots) == 2)
        await save("run")
        await pilot.press("escape", "b")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "LeaderboardScreen"
                         and app.screen.query_one("#board").row_count == 3)
        await save("leaderboard")
        await pilot.press("escape", "n")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "NewRunScreen" and len(app.screen.query("Input")) > 10)
        await save("new_run")
        await pilot.press("escape", "y")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SystemScreen")
        await save("system")
        await pilot.press("escape")
        app.push_screen(CompareScreen([ids["small"], ids["big"]]))
        await wait_until(pilot, lambda: len(app.screen.query(".plot")) == 3)
        await save("compare")
        await pilot.press("escape", "question_mark")
        await save("help")


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot())
