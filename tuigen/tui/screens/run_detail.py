"""One run: live curves, config and architecture, system panel, log, events, artifacts."""
from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
from collections import defaultdict

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import (DataTable, Footer, Label, Log, Select, Sparkline, Static, TabbedContent,
                             TabPane)
from textual_plotext import PlotextPlot

from ...runner import control
from ...store import ACTIVE
from ...viz.images import read_image
from ...display import metric_group
from ..data import CURVE_POINTS, RunDetail, run_detail
from ..delivery import deliver
from ..widgets import cells
from ..widgets.picture import Picture

POLL_S = 0.25  # a metric in the store shows within half a second
SMOOTHING = 0.9


TABS = {"curves": "Curves", "config": "Config", "system": "System", "log": "Log", "events": "Events",
        "artifacts": "Artifacts"}  # pane id: title, in order; key 1 shows the first
TAB_KEYS = Binding.Group("Tabs", compact=True)
STEP_KEYS = Binding.Group("Step", compact=True)


def smooth(values: list[float], alpha: float) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def thin(xs: list, ys: list, limit: int = CURVE_POINTS) -> tuple[list, list]:
    if len(xs) <= limit:
        return xs, ys
    stride = len(xs) / limit
    idx = [int(i * stride) for i in range(limit)] + [len(xs) - 1]
    return [xs[i] for i in idx], [ys[i] for i in idx]


class RunDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        *(Binding(str(n), f"show_tab('{pane}')", f"{title} tab", group=TAB_KEYS) for n, (pane, title) in
          enumerate(TABS.items(), 1)),
        Binding("m", "toggle_smoothing", "Smooth"),
        Binding("L", "toggle_log", "Log scale"),
        Binding("left_square_bracket", "step(-1)", "Prev step", group=STEP_KEYS),
        Binding("right_square_bracket", "step(1)", "Next step", group=STEP_KEYS),
        Binding("z", "toggle_fit", "Fit/1:1"),
        Binding("S", "sample_checkpoint", "Sample ckpt"),
        Binding("F", "fid_checkpoint", "FID ckpt"),
        Binding("k", "kill", "Kill"),
        Binding("r", "resume", "Resume"),
        Binding("c", "clone", "Clone+edit"),
    ]
    TAB_ONLY = {"toggle_smoothing": "curves", "toggle_log": "curves", "step": "artifacts",
                "toggle_fit": "artifacts"}  # keys that act on one tab: the footer shows them there

    def __init__(self, run_id: int):
        super().__init__()
        self.run_id = run_id
        self.series: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        self.plots: dict[str, PlotextPlot] = {}
        self.dirty: set[str] = set()
        self.last_point_id = 0
        self.log_offset: int | None = None  # None: the log's tail has not been read yet
        self.sys_since = 0.0
        self.cpu_hist: list[float] = []
        self.rss_hist: list[float] = []
        self.smoothing = False
        self.log_scale = False
        self.images: dict[str, list] = {}  # key -> image artifacts sorted by step
        self.image_key: str | None = None
        self.image_index = -1
        self.fit = True  # pictures fill their pane; z draws them 1:1
        self.checkpoints: list = []
        self.detail: RunDetail | None = None
        self.shown_config = False

    def compose(self) -> ComposeResult:
        yield Static(f"run {self.run_id}", id="run-header")  # the run's own title bar
        with TabbedContent(initial="curves"):
            with TabPane(TABS["curves"], id="curves"):
                yield VerticalScroll(Grid(classes="plots", id="plots"))
            with TabPane(TABS["config"], id="config"):
                with VerticalScroll():
                    yield DataTable(id="config-table", show_cursor=False)
                    yield Static("", id="model-summary")
            with TabPane(TABS["system"], id="system"):
                with Vertical():
                    yield Static("waiting for the first sample...", id="sys-text")
                    yield Label("CPU % of this run's process tree")
                    yield Sparkline([], id="cpu-spark")
                    yield Label("RSS (memory) of this run's process tree")
                    yield Sparkline([], id="rss-spark")
            with TabPane(TABS["log"], id="log"):
                yield Log(id="log-view", max_lines=5000)
            with TabPane(TABS["events"], id="events"):
                yield DataTable(id="events-table", show_cursor=False)
            with TabPane(TABS["artifacts"], id="artifacts"):
                with Vertical():
                    with Horizontal(id="artifact-bar"):
                        yield Select([], prompt="image", id="artifact-key", allow_blank=True)
                        yield Label("", id="artifact-step")
                    yield Vertical(id="artifact-image")
                    yield Label("checkpoints: S samples 64 images, F computes FID (each a linked child run)")
                    yield DataTable(id="ckpt-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#events-table", DataTable).add_columns("time", "level", "message")
        self.query_one("#config-table", DataTable).add_columns("option", "value")
        self.query_one("#ckpt-table", DataTable).add_columns("step", "path")
        self.poll()

    # -- polling -----------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="run-poll")
    def poll(self) -> None:
        detail = run_detail(self.app.store, self.run_id, self.last_point_id, self.log_offset, self.sys_since)
        deliver(self, self.apply, detail)

    def apply(self, d: RunDetail) -> None:
        self.detail = d
        self.last_point_id, self.log_offset = d.last_point_id, d.log_offset
        r = d.run
        total = f"/{r.total_steps}" if r.total_steps else ""
        header = Text.assemble((f"run {r.id} ", "bold"), f"{r.name}   ", cells.status(r.status),
                               f"   {r.kind} on {r.dataset or '-'}   step {r.step}{total}   "
                               f"{cells.elapsed(r.started_at, r.ended_at)}   {r.host} {r.device}",
                               f"   from run {r.parent_id}" if r.parent_id else "")
        if r.error and r.error.strip():
            header.append("\n" + r.error.strip().splitlines()[-1], style="red")
        self.query_one("#run-header", Static).update(header)
        self._add_points(d.points)
        self._redraw()
        if not self.shown_config:
            self._show_config(d)
        self._show_system(d)
        if d.log_text:
            self.query_one("#log-view", Log).write(d.log_text)
        self._show_events(d)
        self._show_artifacts(d)
        still_live = r.status in ACTIVE
        self.set_timer(POLL_S if still_live else 2.0, self.poll)

    def _add_points(self, points) -> None:
        for p in points:
            xs, ys = self.series[p.key]
            xs.append(p.step)
            ys.append(p.value)
            self.dirty.add(metric_group(p.key))

    def _redraw(self, everything: bool = False) -> None:
        groups = defaultdict(list)
        for key in self.series:
            groups[metric_group(key)].append(key)
        grid = self.query_one("#plots", Grid)
        for group in sorted(groups):
            if group not in self.plots:
                plot = PlotextPlot(classes="plot")
                self.plots[group] = plot
                grid.mount(plot)
                self.dirty.add(group)
            if group not in self.dirty and not everything:
                continue
            plt = self.plots[group].plt
            plt.clear_data()
            plt.clear_figure()
            plt.title(group + (" (smoothed)" if self.smoothing else "") + (" log10" if self.log_scale else ""))
            for key in sorted(groups[group]):
                xs, ys = self.series[key]
                ys = smooth(ys, SMOOTHING) if self.smoothing else ys
                if self.log_scale:  # our own log10: values <= 0 have no log and are left out
                    kept = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
                    xs, ys = [x for x, _ in kept], [y for _, y in kept]
                xs, ys = thin(xs, ys)
                if xs:
                    plt.plot(xs, ys, label=key, marker="braille")
            self.plots[group].refresh()
        self.dirty.clear()

    def _show_config(self, d: RunDetail) -> None:
        table = self.query_one("#config-table", DataTable)
        for k, v in d.config.items():
            table.add_row(k, json.dumps(v) if isinstance(v, (list, dict)) else str(v))
        if d.model_summary:
            self.query_one("#model-summary", Static).update(d.model_summary)
            self.shown_config = True
        elif d.run.status not in ACTIVE:
            self.shown_config = True

    def _show_system(self, d: RunDetail) -> None:
        if not d.system:
            if d.run.status not in ACTIVE and not self.cpu_hist:
                self.query_one("#sys-text", Static).update("no system samples (the run is not running)")
            return
        self.sys_since = d.system[-1].time
        cpu_rows = [s for s in d.system if s.gpu_index is None]
        gpu_rows = [s for s in d.system if s.gpu_index is not None]
        self.cpu_hist = (self.cpu_hist + [s.cpu_percent or 0 for s in cpu_rows])[-120:]
        self.rss_hist = (self.rss_hist + [(s.rss_bytes or 0) / 2**20 for s in cpu_rows])[-120:]
        last = cpu_rows[-1] if cpu_rows else None
        lines = []
        if last:
            lines.append(f"CPU {last.cpu_percent or 0:.0f}%   RSS {(last.rss_bytes or 0) / 2**20:.0f} MiB")
        if gpu_rows:
            for g in {g.gpu_index: g for g in gpu_rows}.values():
                mem = f"{(g.gpu_mem_used or 0) / 2**30:.1f}/{(g.gpu_mem_total or 0) / 2**30:.1f} GiB"
                lines.append(f"GPU {g.gpu_index}: util {g.gpu_util or 0:.0f}%  mem {mem}  "
                             f"{g.gpu_temp or 0:.0f}°C  {g.gpu_power or 0:.0f} W")
        else:
            lines.append("no GPU: this run uses the CPU")
        self.query_one("#sys-text", Static).update("\n".join(lines))
        self.query_one("#cpu-spark", Sparkline).data = self.cpu_hist
        self.query_one("#rss-spark", Sparkline).data = self.rss_hist

    def _show_events(self, d: RunDetail) -> None:
        table = self.query_one("#events-table", DataTable)
        for e in d.events[table.row_count:]:
            style = {"error": "red", "warning": "yellow"}.get(e.level, "")
            table.add_row(time.strftime("%H:%M:%S", time.localtime(e.time)),
                          f"[{style}]{e.level}[/]" if style else e.level, e.message)

    def _show_artifacts(self, d: RunDetail) -> None:
        images: dict[str, list] = defaultdict(list)
        for a in d.artifacts:
            if a.kind == "image":
                images[a.key].append(a)
        for v in images.values():
            v.sort(key=lambda a: (a.step or 0, a.id))
        if set(images) != set(self.images):
            select = self.query_one("#artifact-key", Select)
            select.set_options([(k, k) for k in sorted(images)])  # this blanks the choice: set it again
            if self.image_key is None and images:
                self.image_key = "samples" if "samples" in images else sorted(images)[0]
            if self.image_key in images:
                select.value = self.image_key
        grew = self.image_key and len(images.get(self.image_key, [])) != len(self.images.get(self.image_key, []))
        following = self.image_index == -1 or self.image_index == len(self.images.get(self.image_key or "", [])) - 1
        self.images = images
        if grew and following:  # follow the newest grid unless the user moved the slider
            self.image_index = len(images[self.image_key]) - 1
            self._show_image()
        elif grew:  # stay on the one shown; its "i/n" still counts the new ones
            self._show_position()
        ckpts = sorted((a for a in d.artifacts if a.kind == "checkpoint"), key=lambda a: a.step or 0)
        if [a.id for a in ckpts] != [a.id for a in self.checkpoints]:
            self.checkpoints = ckpts
            table = self.query_one("#ckpt-table", DataTable)
            table.clear()
            for a in ckpts:
                table.add_row(str(a.step), a.path, key=str(a.id))

    def _show_image(self) -> None:
        items = self.images.get(self.image_key or "", [])
        holder = self.query_one("#artifact-image", Vertical)
        holder.remove_children()
        if not items:
            self.query_one("#artifact-step", Label).update("no images yet")
            return
        self.image_index = max(0, min(self.image_index, len(items) - 1))
        art = self._show_position()
        try:  # decoded here: a truncated file would otherwise fail while drawing and end the app
            holder.mount(Picture(read_image(art.path), fit=self.fit))
        except Exception as e:  # a missing or corrupt file is a message, not a crash
            holder.mount(Label(Text(f"cannot show {art.path}: {e}")))  # a path is text, not markup

    def _show_position(self):
        """The label over the picture: its step and place among the key's images."""
        items = self.images[self.image_key]
        art = items[self.image_index]
        self.query_one("#artifact-step", Label).update(Text(  # Text: "[ and ]" and the path are not markup
            f" step {art.step}  ({self.image_index + 1}/{len(items)}; [ and ] move, z fit/1:1)  {art.path}"))
        return art

    @on(Select.Changed, "#artifact-key")
    def image_key_changed(self, event: Select.Changed) -> None:
        if not isinstance(event.value, str) or event.value == self.image_key and self.image_index >= 0:
            return
        self.image_key = str(event.value)
        self.image_index = len(self.images.get(self.image_key, [])) - 1
        self._show_image()

    # -- actions -------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool:
        tab = self.TAB_ONLY.get(action)
        if tab is None:
            return True
        tabs = self.query(TabbedContent)
        return bool(tabs) and tabs.first().active == tab

    @on(TabbedContent.TabActivated)
    def tab_changed(self) -> None:
        self.refresh_bindings()

    def action_show_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_toggle_fit(self) -> None:
        self.fit = not self.fit
        for picture in self.query(Picture):
            picture.set_fit(self.fit)
        self.notify("pictures fill their pane" if self.fit else "pictures at 1:1 (one image pixel per dot)")

    def action_toggle_smoothing(self) -> None:
        self.smoothing = not self.smoothing
        self._redraw(everything=True)

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self._redraw(everything=True)

    def action_step(self, delta: int) -> None:
        if self.image_key and self.images.get(self.image_key):
            self.image_index = max(0, min(len(self.images[self.image_key]) - 1, self.image_index + delta))
            self._show_image()

    def _checkpoint_step(self) -> int | None:
        table = self.query_one("#ckpt-table", DataTable)
        if not self.checkpoints:
            self.notify("this run has no checkpoint yet", severity="warning")
            return None
        if table.row_count and table.cursor_row is not None and 0 <= table.cursor_row < len(self.checkpoints):
            return self.checkpoints[table.cursor_row].step
        return self.checkpoints[-1].step

    def _child(self, verb: str, extra: list[str]) -> None:
        step = self._checkpoint_step()
        if step is None:
            return
        # No --db: the child's worker hands the store URL on through the environment, so no
        # password lands in the child run's stored command or in `ps`.
        cmd = [sys.executable, "-m", "tuigen", verb, str(self.run_id), "--checkpoint", str(step), *extra]
        self._launch_child(shlex.join(cmd), f"{verb}-{self.run_id}-step{step}")

    @work(thread=True, group="run-actions")
    def _launch_child(self, command: str, name: str) -> None:
        try:
            child = control.launch(self.app.store, "exec", {"command": command, "cwd": os.getcwd()}, name=name,
                                   parent_id=self.run_id, tags=["child"])
            self.app.call_from_thread(self.notify, f"started run {child}: {name}")
        except Exception as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")

    def action_sample_checkpoint(self) -> None:
        self._child("sample", ["-n", "64"])

    def action_fid_checkpoint(self) -> None:
        self._child("fid", ["-n", "2048"])

    @work(thread=True, group="run-actions")
    def _control(self, fn) -> None:
        try:
            self.app.call_from_thread(self.notify, fn(self.app.store, self.run_id))
        except Exception as e:
            self.app.call_from_thread(self.notify, str(e), severity="error")

    def action_kill(self) -> None:
        self._control(control.stop)

    def action_resume(self) -> None:
        self._control(control.resume)

    def action_clone(self) -> None:
        from .new_run import NewRunScreen

        self.app.push_screen(NewRunScreen(clone_of=self.run_id))
