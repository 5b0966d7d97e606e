"""Reports: what a researcher pastes into a paper, from runs already in the store.

`write_report(store, run_ids, out_dir)` writes report.md (images linked from images/) and a
standalone report.html (the same images embedded as base64), with:
- the hyperparameter table: the knobs that vary among the runs, each run's scores at its newest
  evaluated checkpoint with their provenance (footnotes), and its final loss: the tuning table
  of a sweep falls out of it;
- loss curves: one matplotlib figure per metric group (display.metric_group), runs overlaid;
- each run's final sample grid, and its denoising strip, eta grid, interpolation, class grid,
  style-mixing grid and t-SNE plots where it has them;
- the DANN table when there are dann runs;
- each run's command to reproduce it.

Reads the store and image files only (no torch): the CLI and the TUI both write reports.
"""
from __future__ import annotations

import base64
import html
import json
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .. import config as schema
from ..display import metric_group, safe_text
from ..experiments import KINDS
from ..files import atomic_write
from ..store import Store
from .dann_table import dann_table
from .leaderboard import _fmt, varying_params

# Pictures a run may have, in the order a report shows them (newest of each key).
FIGURES = (("samples", "final samples"), ("samples_ema", "final samples, EMA generator"),
           ("style_mixing", "style mixing"), ("class_grid", "class grid"),
           ("denoising_strip", "denoising strip (x_t, then predicted x_0)"), ("eta_grid", "DDIM eta grid"),
           ("interpolation", "interpolation (slerp row, lerp row)"), ("tsne_class", "t-SNE by class"),
           ("tsne_domain", "t-SNE by domain"))
MAX_POINTS = 2000  # per curve in a figure (store.metric_curves reduces longer ones)
RESOURCE_FLAGS = {"gpus": "--gpus", "processes": "--processes", "partition": "--partition", "time": "--time",
                  "signal_before": "--signal-before"}


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: str  # relative to the report folder
    caption: str


@dataclass
class Report:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # ("h2"|"h3"|"p"|"table"|"image"|"code", ...)

    def add(self, what: str, value: Any) -> None:
        self.blocks.append((what, value))


# -- building -----------------------------------------------------------------------------
def build_report(store: Store, run_ids: Sequence[int], out_dir: Path, *, title: str,
                 intro: Sequence[str] = (), extra: dict[str, dict[int, str]] | None = None) -> Report:
    """`extra`: more columns of the runs table, {column: {run_id: text}} (a study's trial and objective)."""
    runs = [store.get_run(i) for i in dict.fromkeys(run_ids)]
    if not runs:
        raise ValueError("a report needs at least one run")
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    report = Report(title)
    for line in intro:
        report.add("p", line)
    report.add("p", f"{len(runs)} run(s), written {time.strftime('%Y-%m-%d %H:%M')} by tuigen report.")
    _hyperparameter_table(store, runs, report, extra or {})
    _dann(store, runs, report)
    _curves(store, runs, images, report)
    _figures(store, runs, images, report)
    _commands(runs, report)
    return report


def _hyperparameter_table(store: Store, runs, report: Report, extra: dict[str, dict[int, str]]) -> None:
    configs = [json.loads(r.config or "{}") for r in runs]
    knobs = varying_params(configs)
    chosen, provenances = _scores(store, [r.id for r in runs])
    metrics = sorted({m for per_run in chosen.values() for m in per_run})
    labels = {key: chr(ord("A") + i) for i, key in enumerate(provenances)}
    summaries = store.summary([r.id for r in runs])
    header = ["run", "name", "kind", "status", *extra, *knobs, *metrics, "final loss"]
    rows = []
    for run, cfg in zip(runs, configs):
        kind = KINDS.get(run.kind)
        loss = summaries.get(run.id, {}).get(kind.progress_metric if kind else "loss")
        cells = [str(run.id), run.name, run.kind, run.status, *[col.get(run.id, "-") for col in extra.values()],
                 *[_fmt(cfg.get(k)) for k in knobs]]
        for metric in metrics:
            sc = chosen.get(run.id, {}).get(metric)
            cells.append("-" if sc is None else f"{sc.value:.4g} [{labels[sc.provenance_key]}, step {sc.step}]")
        cells.append("-" if loss is None else f"{loss.last:.4g}")
        rows.append(cells)
    report.add("h2", "Runs")
    report.add("p", ("The knobs that vary among these runs, each run's scores at its newest evaluated "
                     "checkpoint (letters name the provenance, below), and its last logged "
                     + "loss." if knobs else "Scores at each run's newest evaluated checkpoint and the last logged loss."))
    report.add("table", Table(header, rows))
    for key, prov in provenances.items():
        report.add("p", f"[{labels[key]}] {prov['metric']} with provenance {key}: "
                        + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(prov["provenance"].items())))


def _scores(store: Store, run_ids: list[int]) -> tuple[dict, dict]:
    """({run: {metric: score}}, {provenance_key: {metric, provenance}}): each run's score of each
    metric at its newest evaluated checkpoint, the newest evaluation of that step."""
    chosen: dict[int, dict] = {}
    for sc in store.scores(run_ids=run_ids):  # id order: a later evaluation of the same step wins
        mine = chosen.setdefault(sc.run_id, {})
        cur = mine.get(sc.metric)
        if cur is None or (sc.step if sc.step is not None else -1) >= (cur.step if cur.step is not None else -1):
            mine[sc.metric] = sc
    provenances: dict[str, dict] = {}
    for per_run in chosen.values():
        for sc in sorted(per_run.values(), key=lambda s: s.metric):
            provenances.setdefault(sc.provenance_key, {"metric": sc.metric, "provenance": json.loads(sc.provenance)})
    return chosen, dict(sorted(provenances.items(), key=lambda kv: kv[1]["metric"]))


def _dann(store: Store, runs, report: Report) -> None:
    ids = [r.id for r in runs if r.kind == "dann"]
    if not ids:
        return
    columns, rows = dann_table(store, run_ids=ids)
    if not columns:
        return
    report.add("h2", "Domain adaptation: target accuracy")
    report.add("table", Table(["", *columns], [[label, *("-" if c is None else f"{c.value:.4f} (run {c.run_id})"
                                                         for c in cells)] for label, cells in rows]))


def _curves(store: Store, runs, images: Path, report: Report) -> None:
    series: dict[str, dict[tuple[int, str], tuple[list, list]]] = {}
    for run in runs:
        for p in store.metric_curves(run.id, MAX_POINTS)[0]:  # bounded memory for runs of millions of points
            steps, values = series.setdefault(metric_group(p.key), {}).setdefault((run.id, p.key), ([], []))
            steps.append(p.step)
            values.append(p.value)
    if not series:
        return
    report.add("h2", "Curves")
    names = {r.id: r.name for r in runs}
    for group in sorted(series, key=lambda g: (g != "loss", g)):
        path = images / f"curve-{_file_safe(group)}.png"
        _plot(series[group], names, group, path)
        report.add("image", Image(f"images/{path.name}", f"{group} (one line per run and metric)"))


def _plot(lines: dict, names: dict[int, str], group: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    keys = sorted({key for _, key in lines})
    styles = ["-", "--", ":", "-."]
    for (run_id, key), (steps, values) in sorted(lines.items()):
        label = safe_text(f"{run_id} {names[run_id]}" + (f" {key}" if len(keys) > 1 else ""))
        ax.plot(steps, values, styles[keys.index(key) % len(styles)], label=label,
                marker="o" if len(steps) < 3 else None, linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel(group)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, dpi=110, format="png", bbox_inches="tight")


def _figures(store: Store, runs, images: Path, report: Report) -> None:
    from ..viz.images import image_problem

    first = True
    for run in runs:
        newest: dict[str, Any] = {}
        for a in store.artifacts(run.id, kind="image"):
            newest[a.key] = a  # artifacts come in id order: the newest of each key wins
        shown = [(key, caption) for key, caption in FIGURES if key in newest]
        if not shown:
            continue
        if first:
            report.add("h2", "Pictures")
            first = False
        report.add("h3", f"run {run.id}: {run.name}")
        for key, caption in shown:
            a = newest[key]
            problem = image_problem(a.path)
            if problem:
                report.add("p", f"{caption} (step {a.step}): not included, {problem}")
                continue
            name = f"run{run.id}-{_file_safe(key)}-step{a.step if a.step is not None else 0}{Path(a.path).suffix}"
            shutil.copyfile(a.path, images / name)
            report.add("image", Image(f"images/{name}", f"run {run.id} {caption}, step {a.step}"))


def reproduce_command(run) -> str:
    """The `tuigen run` line that makes this run again: its kind, every knob that differs from
    the kind's default, and where it ran."""
    kind = KINDS.get(run.kind)
    if kind is None:
        return f"# run {run.id} was logged from a script (tuigen.init); its command: {run.command or 'unknown'}"
    stored = json.loads(run.config or "{}")
    parts = ["tuigen", "run", kind.name]
    for k in schema.ordered_knobs(kind.config):
        if k.name not in stored:
            continue
        value = tuple(stored[k.name]) if isinstance(stored[k.name], list) else stored[k.name]
        if value != k.default:  # floats in full: a study's sampled lr has more digits than a table shows
            text = repr(value) if isinstance(value, float) else schema.format_value(value)
            parts += [k.flag, text.strip("()") if isinstance(value, tuple) else text]
    resources = json.loads(run.resources or "{}")
    if run.executor != "local":
        parts += ["--executor", run.executor]
    for key, flag in RESOURCE_FLAGS.items():
        if resources.get(key) not in (None, "", []):
            parts += [flag, str(resources[key])]
    parts += [f"--sbatch-arg={a}" for a in resources.get("sbatch_args") or []]
    return shlex.join(parts)


def _commands(runs, report: Report) -> None:
    report.add("h2", "Commands to reproduce")
    report.add("code", "\n".join(reproduce_command(r) for r in runs))


def _file_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def default_folder(what: str) -> Path:
    """Where a report goes when no folder is named: report-WHAT-TIME in the working folder."""
    return Path(f"report-{_file_safe(what)}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()


# -- rendering ----------------------------------------------------------------------------
def _md_cell(text: str) -> str:
    return safe_text(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    out = [f"# {safe_text(report.title)}", ""]
    for what, value in report.blocks:
        if what in ("h2", "h3"):
            out += [("## " if what == "h2" else "### ") + safe_text(value), ""]
        elif what == "p":
            out += [safe_text(value), ""]
        elif what == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in value.header) + " |")
            out.append("|" + "---|" * len(value.header))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in value.rows]
            out.append("")
        elif what == "image":
            out += [f"![{_md_cell(value.caption)}]({value.path})", ""]
        elif what == "code":
            out += ["```bash", safe_text(value, keep_newlines=True), "```", ""]
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%;image-rendering:pixelated}
figcaption{font-size:13px;color:#555}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}"""


def render_html(report: Report, out_dir: Path) -> str:
    esc = lambda t: html.escape(safe_text(t, keep_newlines=True))  # noqa: E731
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{esc(report.title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{esc(report.title)}</h1>"]
    for what, value in report.blocks:
        if what in ("h2", "h3"):
            out.append(f"<{what}>{esc(value)}</{what}>")
        elif what == "p":
            out.append(f"<p>{esc(value)}</p>")
        elif what == "table":
            out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in value.header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in value.rows]
            out.append("</table>")
        elif what == "image":
            data = base64.b64encode((out_dir / value.path).read_bytes()).decode()
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(value.caption)}"'
                       f"{_display_width(out_dir / value.path)}><figcaption>{esc(value.caption)}</figcaption></figure>")
        elif what == "code":
            out.append(f"<pre><code>{esc(value)}</code></pre>")
    out.append("</body></html>")
    return "\n".join(out)


def _display_width(path: Path) -> str:
    """Small sample grids (8x8 digits) are drawn larger, pixel for pixel, so they can be seen."""
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        width = im.size[0]
    return f' width="{width * (256 // width)}"' if width < 128 else ""


def write_report(store: Store, run_ids: Sequence[int], out_dir: str | Path, *, title: str,
                 intro: Sequence[str] = (), extra: dict[str, dict[int, str]] | None = None) -> Path:
    """Write report.md, report.html and images/ into out_dir; returns the folder."""
    out_dir = Path(out_dir)
    report = build_report(store, run_ids, out_dir, title=title, intro=intro, extra=extra)
    with atomic_write(out_dir / "report.md") as f:
        f.write(render_markdown(report).encode())
    with atomic_write(out_dir / "report.html") as f:
        f.write(render_html(report, out_dir).encode())
    return out_dir


# -- what to report -----------------------------------------------------------------------
@dataclass
class Selection:
    """What a report is of: its runs (in the order shown), title, opening lines, extra columns."""

    run_ids: list[int]
    title: str
    intro: list[str] = field(default_factory=list)
    extra: dict[str, dict[int, str]] = field(default_factory=dict)

    def write(self, store: Store, out_dir: str | Path, title: str | None = None) -> Path:
        return write_report(store, self.run_ids, out_dir, title=title or self.title, intro=self.intro,
                            extra=self.extra)


def sweep_runs(store: Store, sweep_id: int) -> Selection:
    runs = store.list_runs(sweep_id=sweep_id, newest_first=False)
    if not runs:
        raise ValueError(f"--sweep {sweep_id}: no runs belong to a sweep with that id")
    return Selection([r.id for r in runs], f"Sweep {sweep_id}")


def study_runs(store: Store, name: str) -> Selection:
    from .study_board import format_study_board, study_board

    board = study_board(store, name)
    if not board.rows:
        raise ValueError(f"--study {name}: the study has no trial runs yet")
    intro = format_study_board(board).splitlines()[:2]
    notes = [f"trial {r.trial} (run {r.run_id}) {r.state}: {r.note}" for r in board.rows if r.note]
    extra = {"trial": {r.run_id: str(r.trial) for r in board.rows},
             f"objective {board.objective} (step)": {r.run_id: "-" if r.value is None else f"{r.value:.4g} ({r.step})"
                                                     for r in board.rows}}
    return Selection([r.run_id for r in board.rows], f"Study {board.name}", intro + notes, extra)
