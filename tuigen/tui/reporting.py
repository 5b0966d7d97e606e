"""The report keys (R on the runs table, the leaderboard and the studies screen): write the
report of what is shown, in a worker thread, into report-WHAT-TIME/ in the working folder."""
from __future__ import annotations


def write_report_in_background(screen, chosen, what: str) -> None:
    """`chosen`: a reports.report.Selection (the runs shown, a title, opening lines)."""
    ids = chosen.run_ids
    if not ids:
        screen.notify("nothing to report: no runs shown", severity="warning")
        return

    def write() -> None:
        from ..reports.report import default_folder

        folder = chosen.write(screen.app.store, default_folder(what))
        screen.app.call_from_thread(screen.notify, f"wrote {folder}/report.md and report.html ({len(ids)} runs)",
                                    timeout=8)

    screen.notify(f"writing the report of {len(ids)} run(s)...", timeout=3)
    screen.run_worker(write, thread=True, group="report", name="report")
