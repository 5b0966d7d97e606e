"""The tuigen TUI: screens over the store, every action a key in the footer and a command
in the palette (ctrl+p), help on `?`."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

if TYPE_CHECKING:
    from ..store import Store

MAINTAIN_S = 5.0


class TuigenApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "tuigen"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("b", "leaderboard", "Board"),
        Binding("y", "system", "System"),
        Binding("t", "studies", "Studies", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, store: Store | str):
        """`store`: an open Store, or its URL, opened in a worker thread once the first frame is
        drawn (a SQLite store's first frame is read with plain sqlite3: store/first_paint.py)."""
        super().__init__()
        self._store = None if isinstance(store, str) else store
        self.url = store if isinstance(store, str) else store.url
        self._opening = threading.Lock()
        self.store_error: BaseException | None = None  # why the store could not be opened (the app then ends)
        self.sub_title = _store_label(self.url)

    @property
    def store(self) -> Store:
        """The store, opened on first use (from a worker thread, as every store read is)."""
        if self._store is None:
            with self._opening:
                if self._store is None:
                    self._store = self._open_store()
        return self._store

    def _open_store(self) -> Store:
        from ..store import Store

        try:
            return Store(self.url)
        except Exception as e:  # a damaged, locked or refused store: end, and let `tuigen` say why
            self.store_error = e
            try:
                self.call_from_thread(self.exit, return_code=1)
            except RuntimeError:  # already on the UI thread
                self.exit(return_code=1)
            raise

    def first_paint(self):
        """A light reader for the first frame while the store is not open yet, else None."""
        if self._store is not None:
            return None
        from ..store.first_paint import open_first_paint

        return open_first_paint(self.url)

    def on_mount(self) -> None:
        from .screens.run_list import RunListScreen

        self.push_screen(RunListScreen())
        # given a URL (`tuigen`), reconcile soon after the store opens, as the CLI does before any verb
        self.set_timer(MAINTAIN_S if self._store is not None else 1.0, self.maintain)

    def maintain(self) -> None:
        """Reconcile dead workers and start queued runs, so the queue moves while we watch."""
        self.run_worker(self._maintain, thread=True, exclusive=True, group="maintain")

    def _maintain(self) -> None:
        from ..runner.scheduler import maintain  # imported here: not needed for the first paint

        try:
            maintain(self.store)
        except Exception as e:
            self.call_from_thread(self.notify, f"store maintenance failed: {e}", severity="warning")
        self.call_from_thread(self.set_timer, MAINTAIN_S, self.maintain)

    def on_worker_state_changed(self, event) -> None:
        """One place for failures of background work: tell the user, keep the app alive."""
        from textual.worker import WorkerState

        if event.state == WorkerState.ERROR:
            self.notify(f"{event.worker.name or 'background work'} failed: {event.worker.error}", severity="error")

    # -- global actions -------------------------------------------------------------------
    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen(self.BINDINGS))

    def action_leaderboard(self) -> None:
        from .screens.leaderboard import LeaderboardScreen

        self.push_screen(LeaderboardScreen())

    def action_system(self) -> None:
        from .screens.system import SystemScreen

        self.push_screen(SystemScreen())

    def action_studies(self) -> None:
        from .screens.studies import StudiesScreen

        self.push_screen(StudiesScreen())

    def action_new_run(self, kind: str | None = None) -> None:
        from .screens.new_run import NewRunScreen

        self.push_screen(NewRunScreen(kind=kind))

    def action_open_run(self, run_id: int) -> None:
        from .screens.run_detail import RunDetailScreen

        self.push_screen(RunDetailScreen(run_id))

    # -- command palette: every action of the app and of the current screen ----------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from ..experiments import KINDS

        yield SystemCommand("Leaderboard", "rank runs by FID / KID / accuracy", self.action_leaderboard)
        yield SystemCommand("System", "GPUs, CPU and memory, and which run uses what", self.action_system)
        yield SystemCommand("Studies", "tuigen tune studies: each one's best trial so far", self.action_studies)
        yield SystemCommand("Help", "keys and what they do", self.action_help)
        for kind in KINDS.values():
            yield SystemCommand(f"New run: {kind.name}", kind.summary, lambda k=kind.name: self.action_new_run(k))
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description and binding.show:
                yield SystemCommand(f"{binding.description} ({binding.key})", f"{type(screen).__name__} action",
                                    lambda a=binding.action, s=screen: s.run_action(a))
        for run in self.store.list_runs(limit=30):
            yield SystemCommand(f"Open run {run.id}: {run.name}", f"{run.kind} on {run.dataset or '-'}, {run.status}",
                                lambda i=run.id: self.action_open_run(i))


def _store_label(url: str) -> str:
    """The database as a person names it: runs.db (relative when under the working folder)."""
    import os

    from ..store.first_paint import sqlite_path

    path = sqlite_path(url)  # no SQLAlchemy needed to name a file (the first frame shows it)
    if path is not None:
        rel = os.path.relpath(path.resolve())
        return rel if not rel.startswith("..") else str(path.resolve())
    from ..store.engine import display_url

    return display_url(url)
