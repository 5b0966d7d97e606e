"""The runs table: live, filterable, sortable, multi-select; the home screen."""
from __future__ import annotations

import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from rich.text import Text
from textual.widgets import DataTable, Footer, Header, Input, Static

from ..data import RunRow, RunsPoller, RunsSnapshot
from ..delivery import deliver
from ..widgets import cells

POLL_S = 0.5
COLUMNS = [("sel", " "), ("id", "id"), ("name", "name"), ("kind", "kind"), ("dataset", "dataset"),
           ("status", "status"), ("progress", "progress"), ("loss", "loss"), ("score", "score"),
           ("time", "time"), ("where", "where"), ("sweep", "sweep")]
SORTABLE = [key for key, _ in COLUMNS if key != "sel"]


class RunListScreen(Screen):
    AUTO_FOCUS = "#runs"
    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort"),
        Binding("space", "select", "Select"),
        Binding("n", "new_run", "New"),
        Binding("k", "kill", "Kill"),
        Binding("r", "resume", "Resume"),
        Binding("c", "clone", "Clone+edit"),
        Binding("d", "delete", "Delete"),
        Binding("v", "compare", "Compare"),
        Binding("R", "report", "Report"),
        Binding("escape", "clear", "Clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[int, RunRow] = {}
        self.selected: set[int] = set()
        self.filter_text = ""
        self.sort_key, self.sort_reverse = "id", True
        self.rates: dict[int, tuple[int, float, float]] = {}  # id -> (step, time, steps/s)
        self.poller: RunsPoller | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="filter: name, kind, dataset, status or tag (Enter to keep, Esc to clear)", id="filter")
        yield Static(id="demo")  # what `tuigen demo` is doing, while there is a demo
        table = DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.poller = RunsPoller(lambda: self.app.store, self.app.first_paint)  # the store opens off the UI thread
        self.poll()

    # -- polling: one at a time, the next scheduled when this one is applied ------------
    @work(thread=True, exclusive=True, group="runs-poll")
    def poll(self) -> None:
        snapshot = self.poller.poll()
        deliver(self, self.apply, snapshot)

    def apply(self, snap: RunsSnapshot) -> None:
        for gone in snap.gone:
            self.rows.pop(gone, None)
            self.selected.discard(gone)
            if str(gone) in self.table.rows:
                self.table.remove_row(str(gone))
        added = False
        for row in snap.rows:
            self._track_rate(row, snap.polled_at)
            self.rows[row.id] = row
            added |= self._show(row)
        if added:
            self._sort()
        self.sub_title = self._summary()
        if not snap.partial:
            demo = self.query_one("#demo", Static)
            demo.update(snap.demo)
            demo.set_class(bool(snap.demo), "visible")
        if snap.partial:  # the rest once this frame is on screen (it opens the store: a second of imports)
            self.call_after_refresh(self.poll)
        else:
            self.set_timer(POLL_S if self.is_current else 2.0, self.poll)

    @property
    def table(self) -> DataTable:
        return self.query_one("#runs", DataTable)

    def _track_rate(self, row: RunRow, now: float) -> None:
        prev = self.rates.get(row.id)
        rate = prev[2] if prev else 0.0
        if prev and row.step > prev[0] and now > prev[1]:
            inst = (row.step - prev[0]) / (now - prev[1])
            rate = 0.7 * rate + 0.3 * inst if rate else inst
        elif not prev and row.started_at and row.step:
            rate = row.step / max(1e-6, (row.ended_at or now) - row.started_at)
        if not prev or row.step != prev[0]:
            self.rates[row.id] = (row.step, now, rate)

    def _cells(self, row: RunRow) -> dict:
        rate = self.rates.get(row.id, (0, 0, 0.0))[2]
        return {"sel": "●" if row.id in self.selected else " ", "id": str(row.id), "name": row.name,
                "kind": row.kind, "dataset": row.dataset or "-", "status": cells.status(row.status),
                "progress": cells.progress_bar(row.step, row.total, rate),
                "loss": cells.number(row.loss),
                "score": f"{row.score_label} {cells.number(row.score)}" if row.score is not None else "-",
                "time": cells.elapsed(row.started_at, row.ended_at), "where": row.where,
                "sweep": Text(row.group)}

    def _visible(self, row: RunRow) -> bool:
        if not self.filter_text:
            return True
        hay = " ".join((row.name, row.kind, row.dataset, row.status, row.tags, str(row.id))).lower()
        return all(part in hay for part in self.filter_text.lower().split())

    def _show(self, row: RunRow) -> bool:
        """Update the row's changed cells in place; add it if new. True if a row was added."""
        key = str(row.id)
        visible = self._visible(row)
        if key in self.table.rows:
            if not visible:
                self.table.remove_row(key)
                return False
            for col, value in self._cells(row).items():
                if str(self.table.get_cell(key, col)) != str(value):
                    self.table.update_cell(key, col, value, update_width=True)
            return False
        if visible:
            self.table.add_row(*self._cells(row).values(), key=key)
            return True
        return False

    def _summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rows.values():
            counts[r.status] = counts.get(r.status, 0) + 1
        parts = [f"{n} {s}" for s, n in sorted(counts.items())]
        return f"{len(self.rows)} runs: " + ", ".join(parts) if parts else "no runs yet: press n for a new run"

    # -- sorting and filtering ---------------------------------------------------------
    def _sort_value(self, run_id: int):
        r = self.rows[run_id]
        return {"id": r.id, "name": r.name, "kind": r.kind, "dataset": r.dataset, "status": r.status,
                "progress": (r.step / r.total) if r.total else r.step, "loss": r.loss if r.loss is not None else float("inf"),
                "score": r.score if r.score is not None else float("inf"),
                "time": (r.ended_at or time.time()) - (r.started_at or time.time()), "where": r.where,
                "sweep": r.group}[self.sort_key]

    def _sort(self) -> None:
        self.table.sort("id", key=lambda cell: self._sort_value(int(cell)), reverse=self.sort_reverse)

    def action_sort(self) -> None:
        i = SORTABLE.index(self.sort_key)
        self.sort_key = SORTABLE[(i + 1) % len(SORTABLE)]
        self.sort_reverse = self.sort_key in ("id", "time", "progress")
        self._sort()
        self.notify(f"sorted by {self.sort_key}{' (descending)' if self.sort_reverse else ''}", timeout=2)

    @on(DataTable.HeaderSelected)
    def sort_by_header(self, event: DataTable.HeaderSelected) -> None:
        key = event.column_key.value
        if key in SORTABLE:
            self.sort_reverse = not self.sort_reverse if key == self.sort_key else False
            self.sort_key = key
            self._sort()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("visible")
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        for row in self.rows.values():
            self._show(row)
        self._sort()

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.table.focus()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("visible"):
            box.value = ""
            box.remove_class("visible")
            self.table.focus()
        elif self.selected:
            ids, self.selected = list(self.selected), set()
            for i in ids:
                if i in self.rows:
                    self._show(self.rows[i])

    # -- actions -------------------------------------------------------------------------
    def current_id(self) -> int | None:
        t = self.table
        if not t.row_count:
            return None
        return int(t.coordinate_to_cell_key(t.cursor_coordinate).row_key.value)

    def targets(self) -> list[int]:
        """The selected runs, or the one under the cursor."""
        if self.selected:
            return sorted(self.selected)
        cur = self.current_id()
        return [cur] if cur is not None else []

    def action_select(self) -> None:
        cur = self.current_id()
        if cur is None:
            return
        self.selected.symmetric_difference_update({cur})
        self._show(self.rows[cur])

    @on(DataTable.RowSelected)
    def row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        cur = self.current_id()
        if cur is not None:
            from .run_detail import RunDetailScreen

            self.app.push_screen(RunDetailScreen(cur))

    def action_new_run(self) -> None:
        self.app.action_new_run()

    def action_clone(self) -> None:
        cur = self.current_id()
        if cur is not None:
            from .new_run import NewRunScreen

            self.app.push_screen(NewRunScreen(clone_of=cur))

    def action_kill(self) -> None:
        from ...runner import control  # imported on first use: not needed to draw the table

        for run_id in self.targets():
            self._do(control.stop, run_id)

    def action_resume(self) -> None:
        from ...runner import control

        for run_id in self.targets():
            self._do(control.resume, run_id)

    def action_delete(self) -> None:
        ids = self.targets()
        if not ids:
            return
        from .confirm import ConfirmScreen

        from ...runner import control

        def confirmed(yes: bool | None) -> None:
            if yes:
                for run_id in ids:
                    self._do(control.delete, run_id, force=True)
                self.selected -= set(ids)
                self.poller.polls = 1  # the next poll is a resync: the rows go away

        self.app.push_screen(ConfirmScreen(f"Delete run(s) {', '.join(map(str, ids))} and their files?"), confirmed)

    def action_compare(self) -> None:
        ids = sorted(self.selected)
        if len(ids) < 2:
            self.notify("select two or more runs with space, then press v", severity="warning")
            return
        from .compare import CompareScreen

        self.app.push_screen(CompareScreen(ids))

    def action_report(self) -> None:
        """The report of the selected runs (or the one under the cursor)."""
        from ...reports.report import Selection
        from ..reporting import write_report_in_background

        ids = self.targets()
        write_report_in_background(self, Selection(ids, "Runs " + ", ".join(map(str, ids))), "runs")

    @work(thread=True, group="run-actions")
    def _do(self, fn, run_id: int, **kw) -> None:
        try:
            message = fn(self.app.store, run_id, **kw)
            self.app.call_from_thread(self.notify, message, timeout=3)
        except Exception as e:  # a bad request is a notification, never a crash
            self.app.call_from_thread(self.notify, str(e), severity="error", timeout=5)
