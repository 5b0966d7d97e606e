"""`?`: every key of every screen, generated from the bindings so it never goes stale."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

INTRO = """# tuigen keys

Runs keep going when tuigen closes: it only reads the store and sends signals.
**ctrl+p** opens the command palette with every action below. Esc closes a screen.
"""


def _section(title: str, bindings) -> str:
    lines = [f"\n## {title}\n", "| key | action |", "|---|---|"]
    for b in bindings:
        if isinstance(b, Binding) and b.description:
            key = {"slash": "/", "question_mark": "?", "space": "space", "escape": "esc"}.get(b.key, b.key)
            lines.append(f"| `{key}` | {b.description} |")
    return "\n".join(lines)


class HelpScreen(ModalScreen):
    """`app_bindings` are the app's own keys (passed in: this screen never imports the app)."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, app_bindings) -> None:
        super().__init__()
        self.app_bindings = list(app_bindings)

    def compose(self) -> ComposeResult:
        from .compare import CompareScreen
        from .leaderboard import LeaderboardScreen
        from .new_run import NewRunScreen
        from .run_detail import RunDetailScreen
        from .run_list import RunListScreen
        from .system import SystemScreen

        sections = [("Everywhere", self.app_bindings)] + [(title, screen.BINDINGS) for title, screen in (
            ("Runs", RunListScreen), ("Run", RunDetailScreen), ("Leaderboard", LeaderboardScreen),
            ("Compare", CompareScreen), ("New run", NewRunScreen), ("System", SystemScreen))]
        text = INTRO + "".join(_section(title, bindings) for title, bindings in sections)
        with VerticalScroll(id="help-box"):
            yield Markdown(text, id="help-body")
