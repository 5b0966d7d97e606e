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
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        from ..app import TuigenApp
        from .compare import CompareScreen
        from .leaderboard import LeaderboardScreen
        from .new_run import NewRunScreen
        from .run import RunScreen
        from .runs import RunsScreen
        from .system import SystemScreen

        text = INTRO + "".join(_section(t, c.BINDINGS) for t, c in (
            ("Everywhere", TuigenApp), ("Runs", RunsScreen), ("Run", RunScreen), ("Leaderboard", LeaderboardScreen),
            ("Compare", CompareScreen), ("New run", NewRunScreen), ("System", SystemScreen)))
        with VerticalScroll(id="help-box"):
            yield Markdown(text, id="help-body")
