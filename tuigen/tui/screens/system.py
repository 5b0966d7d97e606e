"""Every GPU and the CPU / RAM with short history, and which run uses what."""
from __future__ import annotations

import time
from collections import deque

import psutil
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Label, Sparkline, Static

from ...runner.monitor import nvml
from ...store import LIVE
from ..delivery import deliver

POLL_S = 1.0
HISTORY = 60


class SystemScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.cpu: deque[float] = deque(maxlen=HISTORY)
        self.ram: deque[float] = deque(maxlen=HISTORY)
        self.gpu: dict[int, deque[float]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll():
            yield Static("", id="cpu-text")
            yield Sparkline([], id="cpu-hist")
            yield Static("", id="ram-text")
            yield Sparkline([], id="ram-hist")
            yield Static("", id="gpu-text")
            yield Label("[b]live runs[/b]")
            yield DataTable(id="users", show_cursor=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#users", DataTable).add_columns("run", "name", "status", "device", "CPU %", "RSS MiB", "GPU")
        psutil.cpu_percent(None)
        self.poll()

    @work(thread=True, exclusive=True, group="system")
    def poll(self) -> None:
        cpu = psutil.cpu_percent(None)
        mem = psutil.virtual_memory()
        nv = nvml()
        gpus = [nv.sample(i) for i in range(nv.count())] if nv.ok else []
        store = self.app.store
        runs = store.list_runs(status=LIVE)
        latest = {}
        for r in runs:
            samples = store.system_samples(r.id, since=time.time() - 30)
            latest[r.id] = ([s for s in samples if s.gpu_index is None][-1:],
                            sorted({s.gpu_index for s in samples if s.gpu_index is not None}))
        deliver(self, self.show, cpu, mem, gpus, runs, latest)

    def show(self, cpu, mem, gpus, runs, latest) -> None:
        self.cpu.append(cpu)
        self.ram.append(mem.percent)
        self.query_one("#cpu-text", Static).update(f"[b]CPU[/b] {cpu:.0f}% of {psutil.cpu_count()} cores")
        self.query_one("#cpu-hist", Sparkline).data = list(self.cpu)
        self.query_one("#ram-text", Static).update(
            f"[b]RAM[/b] {mem.used / 2**30:.1f} / {mem.total / 2**30:.1f} GiB ({mem.percent:.0f}%)")
        self.query_one("#ram-hist", Sparkline).data = list(self.ram)
        if not gpus:
            self.query_one("#gpu-text", Static).update("[b]GPU[/b] none found (no NVIDIA driver): runs use the CPU")
        else:
            lines = []
            for g in gpus:
                self.gpu.setdefault(g["gpu_index"], deque(maxlen=HISTORY)).append(g.get("gpu_util") or 0)
                spark = "".join(" ▁▂▃▄▅▆▇█"[min(8, int(v / 12.5))] for v in self.gpu[g["gpu_index"]])
                lines.append(f"[b]GPU {g['gpu_index']}[/b] util {g.get('gpu_util') or 0:.0f}%  "
                             f"mem {(g.get('gpu_mem_used') or 0) / 2**30:.1f}/{(g.get('gpu_mem_total') or 0) / 2**30:.1f} GiB  "
                             f"{g.get('gpu_temp') or 0:.0f}°C  {g.get('gpu_power') or 0:.0f} W  {spark}")
            self.query_one("#gpu-text", Static).update("\n".join(lines))
        table = self.query_one("#users", DataTable)
        table.clear()
        for r in runs:
            cpu_rows, gpu_ids = latest.get(r.id, ([], []))
            s = cpu_rows[-1] if cpu_rows else None
            table.add_row(str(r.id), r.name, r.status, r.device or "-",
                          f"{s.cpu_percent:.0f}" if s and s.cpu_percent is not None else "-",
                          f"{(s.rss_bytes or 0) / 2**20:.0f}" if s else "-",
                          ",".join(map(str, gpu_ids)) or "-")
        self.set_timer(POLL_S, self.poll)
