"""Studies (`tuigen tune`): each study's best trial so far, how many trials finished, and
whether its driver runs; enter shows the study's trials ranked, R writes its report."""
from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from rich.text import Text
from textual.widgets import DataTable, Footer, Header, Static

from ...display import number, safe_text
from ...reports.leaderboard import _fmt
from ...reports.study_board import StudyBoard, study_board
from ..delivery import deliver

POLL_S = 2.0


class StudiesScreen(Screen):
    AUTO_FOCUS = "#studies"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("enter", "open", "Best run"),
                Binding("R", "report", "Report")]

    def __init__(self) -> None:
        super().__init__()
        self.boards: dict[str, StudyBoard] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="study-best")
        yield DataTable(id="studies", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#studies", DataTable).add_columns("study", "kind", "objective", "trials", "best so far",
                                                           "best run", "best params", "status")
        self.poll()

    @work(thread=True, exclusive=True, group="studies-poll")
    def poll(self) -> None:
        boards = {s.name: study_board(self.app.store, s.name) for s in self.app.store.list_studies()}
        deliver(self, self.show, boards)

    def show(self, boards: dict[str, StudyBoard]) -> None:
        self.boards = boards
        table = self.query_one("#studies", DataTable)
        for name, b in boards.items():
            done = sum(r.state != "running" for r in b.rows)
            best = b.best
            cells = [Text(safe_text(name)), b.kind, f"{b.objective} ({b.direction[:3]})", f"{done}/{b.trials_asked}",
                     number(best.value) if best else "-", str(best.run_id) if best else "-",
                     Text(", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()) if best else ""), b.status]
            if name in table.rows:
                for col, value in zip(table.columns, cells):
                    table.update_cell(name, col, value, update_width=True)
            else:
                table.add_row(*cells, key=name)
        self.query_one("#study-best", Static).update(
            "no studies yet: tuigen tune KIND --trials N --metric fid --lr log:1e-4:1e-2" if not boards else
            f"{len(boards)} studies; enter opens a study's best run, R writes its report")
        self.set_timer(POLL_S, self.poll)

    def current(self) -> StudyBoard | None:
        table = self.query_one("#studies", DataTable)
        if not table.row_count:
            return None
        return self.boards.get(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def action_open(self) -> None:
        board = self.current()
        if board and board.best:
            self.app.action_open_run(board.best.run_id)

    def on_data_table_row_selected(self) -> None:
        self.action_open()

    def action_report(self) -> None:
        from ...reports.report import study_runs
        from ..reporting import write_report_in_background

        board = self.current()
        if board is None or not board.rows:
            self.notify("no trial runs to report yet", severity="warning")
            return
        chosen = study_runs(self.app.store, board.name)
        write_report_in_background(self, chosen, f"study-{board.name}")
