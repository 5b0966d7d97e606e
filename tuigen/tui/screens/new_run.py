"""New run: a form generated from the kind's config schema (defaults, help, inline
validation). Several values separated by `|` in any field make a sweep: the grid over them,
queued at once with a concurrency limit."""
from __future__ import annotations

import json

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Select

from ... import config as schema
from ...experiments import KINDS
from ...runner import control
from ...runner.sweeps import SWEEP_SEP, check_values, split_values


def check_field(k: schema.Knob, text: str) -> str | None:
    """The inline message for one field's text, or None when every value in it is valid."""
    try:
        check_values(k, text)
    except schema.ConfigError as e:
        return str(e)
    return None


class NewRunScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"), Binding("ctrl+s", "launch", "Launch")]

    def __init__(self, kind: str | None = None, clone_of: int | None = None):
        super().__init__()
        self.clone_of = clone_of
        self.base: dict = {}
        self.kind = kind or "ddpm"
        self.knobs: dict[str, schema.Knob] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="artifact-bar"):
            yield Select([(k, k) for k in KINDS], value=self.kind, id="kind", allow_blank=False)
            yield Label("", id="kind-summary")
        yield VerticalScroll(id="form")
        with Horizontal(id="form-buttons"):
            yield Input(placeholder="name (optional)", id="run-name")
            yield Input(placeholder="tags, comma-separated", id="run-tags")
            yield Input(placeholder="sweep: max parallel", id="max-parallel")
            yield Button("Launch (ctrl+s)", variant="primary", id="launch")
        yield Footer()

    def on_mount(self) -> None:
        if self.clone_of is not None:
            run = self.app.store.get_run(self.clone_of)
            self.kind, self.base = run.kind, json.loads(run.config or "{}")
            self.query_one("#kind", Select).value = run.kind
            self.query_one("#run-name", Input).value = f"{run.name}-clone"
            self.sub_title = f"clone of run {run.id}: edit and launch"
        self.build_form()

    @on(Select.Changed, "#kind")
    def kind_changed(self, event: Select.Changed) -> None:
        if event.value != self.kind:
            self.kind, self.base = str(event.value), {}
            self.build_form()

    def build_form(self) -> None:
        kind = KINDS[self.kind]
        self.query_one("#kind-summary", Label).update(f" {kind.summary}")
        form = self.query_one("#form", VerticalScroll)
        form.remove_children()
        self.knobs = {k.name: k for k in schema.ordered_knobs(kind.config)}
        fields = []
        for k in self.knobs.values():
            value = self.base.get(k.name, k.default)
            value = tuple(value) if isinstance(value, list) else value
            rule = k.bounds_text()
            fields.append(Vertical(
                Label(f"[b]{k.name}[/b]" + (f"  [dim]{k.group}[/dim]" if k.group else "")),
                Input(schema.format_value(value) if value != "" else "", id=f"f-{k.name}", placeholder=k.help),
                Label(k.help + (f" ({rule})" if rule else "") + f"; several values: a {SWEEP_SEP} b", classes="field-help"),
                Label("", classes="field-error", id=f"e-{k.name}"),
                classes="field"))
        form.mount_all(fields)

    @on(Input.Changed)
    def validate_field(self, event: Input.Changed) -> None:
        name = (event.input.id or "")[2:]
        if event.input.id and event.input.id.startswith("f-") and name in self.knobs:
            msg = check_field(self.knobs[name], event.value)
            self.query_one(f"#e-{name}", Label).update(msg or "")

    def collect(self) -> tuple[dict, dict, list[str]]:
        """(single values, sweep grid, errors) from the form."""
        values, grid, errors = {}, {}, []
        for name, k in self.knobs.items():
            text = self.query_one(f"#f-{name}", Input).value
            msg = check_field(k, text)
            if msg:
                errors.append(msg)
                continue
            parts = split_values(text)
            if len(parts) > 1:
                grid[name] = parts
            else:
                values[name] = parts[0]
        return values, grid, errors

    @on(Button.Pressed, "#launch")
    def pressed(self) -> None:
        self.action_launch()

    def action_launch(self) -> None:
        values, grid, errors = self.collect()
        if errors:
            self.notify(errors[0], severity="error", timeout=6)
            return
        try:
            schema.build(KINDS[self.kind].config, values)  # cross-field rules, before anything is queued
        except schema.ConfigError as e:
            if not grid:
                self.notify(str(e), severity="error", timeout=6)
                return
        limit = self.query_one("#max-parallel", Input).value.strip()
        if limit and not limit.isdigit():
            self.notify(f"max parallel must be a whole number, got {limit!r}", severity="error")
            return
        name = self.query_one("#run-name", Input).value.strip()
        tags = [t.strip() for t in self.query_one("#run-tags", Input).value.split(",") if t.strip()]
        self.submit(values, grid or {}, name, tags, int(limit) if limit else None)

    @work(thread=True, group="launch")
    def submit(self, values: dict, grid: dict, name: str, tags: list[str], limit: int | None) -> None:
        try:
            ids = control.launch_sweep(self.app.store, self.kind, grid or {}, base_values=values, name=name,
                                       tags=tags, max_parallel=limit, parent_id=self.clone_of)
        except Exception as e:  # validation across fields: say it, keep the form
            self.app.call_from_thread(self.notify, str(e), severity="error", timeout=6)
            return
        msg = f"queued run {ids[0]}" if len(ids) == 1 else f"queued a sweep of {len(ids)} runs ({ids[0]}..{ids[-1]})"
        self.app.call_from_thread(self.notify, msg)
        self.app.call_from_thread(self.app.pop_screen)
