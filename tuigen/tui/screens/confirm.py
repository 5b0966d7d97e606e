"""A yes/no question, answered with y/n (or Enter/Esc)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("enter", "answer(True)", "Yes", show=False),
                Binding("n", "answer(False)", "No"), Binding("escape", "answer(False)", "No", show=False)]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Label(self.question)
            yield Label("[b]y[/b] yes    [b]n[/b] no", classes="field-help")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
