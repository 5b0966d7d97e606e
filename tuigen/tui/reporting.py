"""The report keys (R on the runs table, the leaderboard and the studies screen): write the
report of what is shown, in a worker thread, into report-WHAT-TIME/ in the working folder."""
from __future__ import annotations

from typing import Sequence


def write_report_in_background(screen, run_ids: Sequence[int], title: str, what: str,
                               intro: Sequence[str] = ()) -> None:
    if not run_ids:
        screen.notify("nothing to report: no runs shown", severity="warning")
        return
    ids = list(run_ids)

    def write() -> None:
        from ..reports.report import default_folder, write_report

        folder = write_report(screen.app.store, ids, default_folder(what), title=title, intro=intro)
        screen.app.call_from_thread(screen.notify, f"wrote {folder}/report.md and report.html ({len(ids)} runs)",
                                    timeout=8)

    screen.notify(f"writing the report of {len(ids)} run(s)...", timeout=3)
    screen.run_worker(write, thread=True, group="report", name="report")
