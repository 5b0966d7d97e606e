"""Leaderboard: pick dataset and metric; runs ranked within one provenance, with the
hyperparameters that vary among them as columns."""
from __future__ import annotations

import json

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Select, Static

from ...experiments import scores
from ...reports.leaderboard import Board, _diff, _fmt, leaderboard
from ..delivery import deliver


class LeaderboardScreen(Screen):
    AUTO_FOCUS = "#board"  # arrows and enter act on the ranking at once; tab reaches the pickers
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("enter", "open", "Open run"),
                Binding("p", "next_provenance", "Other provenance"), Binding("R", "report", "Report"),
                Binding("o", "toggle_rule", "Newest / best")]

    def __init__(self) -> None:
        super().__init__()
        self.board: Board | None = None
        self.provenance_key: str | None = None
        self.best = False  # the board's rule: newest evaluated checkpoint, or best over evaluations
        self.datasets_loaded = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="artifact-bar"):
            yield Select([(s.title, s.key) for s in scores().values()], value="fid", id="metric", allow_blank=False)
            yield Select([], prompt="all datasets", id="dataset")
        yield Static("", id="board-provenance")
        yield DataTable(id="board", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load_datasets()
        self.refresh_board()

    @work(thread=True, group="board-datasets")  # not "board": refresh_board is exclusive there and would cancel it
    def load_datasets(self) -> None:
        datasets = sorted({r.dataset for r in self.app.store.list_runs() if r.dataset})
        deliver(self, self._set_datasets, datasets)

    def _set_datasets(self, datasets: list[str]) -> None:
        self.query_one("#dataset", Select).set_options([(d, d) for d in datasets])
        self.datasets_loaded = True

    @on(Select.Changed)
    def changed(self) -> None:
        self.provenance_key = None
        self.refresh_board()

    @work(thread=True, exclusive=True, group="board")
    def refresh_board(self) -> None:
        metric = self.query_one("#metric", Select).value
        dataset = self.query_one("#dataset", Select).value
        dataset = dataset if isinstance(dataset, str) else None  # no selection: every dataset
        board = leaderboard(self.app.store, str(metric), dataset=dataset, provenance_key=self.provenance_key,
                            best=self.best)
        deliver(self, self.show, board)

    def show(self, board: Board) -> None:
        self.board = board
        table = self.query_one("#board", DataTable)
        table.clear(columns=True)
        head = self.query_one("#board-provenance", Static)
        if not board.rows:
            head.update(f"no {board.metric} scores yet: `tuigen fid RUN` or `tuigen accuracy RUN` records them")
            return
        direction = "higher" if board.higher_is_better else "lower"
        prov = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(board.provenance.items()))
        text = f"[b]{board.metric}[/b] ({direction} is better), ranked within provenance {board.provenance_key}: {prov}"
        text += f"\nentry: {board.rule} (t: the other rule)"
        for key, n, other in board.others:
            text += f"\n[yellow]not ranked here[/]: {n} run(s) with {_diff(board.provenance, other)} (p to switch)"
        head.update(text)
        labels = ["#", "run", "name", *board.columns, board.metric, "step", "evals"]
        cells = [[str(r.rank), str(r.run_id), r.name,
                  *[_fmt(r.params[c]) if not isinstance(r.params[c], (dict,)) else json.dumps(r.params[c])
                    for c in board.columns],
                  f"{r.value:.4g}" + (f" ± {r.std:.2g}" if r.std else ""), str(r.step), str(r.evaluations)]
                 for r in board.rows]
        # widths fixed from the content: auto widths raced the header's relayout and cut cells short
        for i, label in enumerate(labels):
            table.add_column(label, width=max(len(label), *(len(row[i]) for row in cells)))
        for r, row in zip(board.rows, cells):
            table.add_row(*row, key=str(r.run_id))

    def action_next_provenance(self) -> None:
        if self.board and self.board.others:
            self.provenance_key = self.board.others[0][0]
            self.refresh_board()

    def action_report(self) -> None:
        """The report of the runs ranked here, in rank order."""
        from ...reports.report import Selection
        from ..reporting import write_report_in_background

        board = self.board
        if board is None:
            return
        order = ", ".join(f"{r.rank}. run {r.run_id} ({r.value:.4g})" for r in board.rows)
        chosen = Selection([r.run_id for r in board.rows], f"Leaderboard: {board.metric}",
                           [f"Ranked within provenance {board.provenance_key}: {order}"])
        write_report_in_background(self, chosen, f"board-{board.metric}")

    def action_toggle_rule(self) -> None:
        self.best = not self.best
        self.refresh_board()

    def action_open(self) -> None:
        table = self.query_one("#board", DataTable)
        if table.row_count:
            run_id = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
            self.app.action_open_run(run_id)

    @on(DataTable.RowSelected)
    def selected(self) -> None:
        self.action_open()
