"""What each `tuigen` verb does. Every verb first reconciles the store with reality
(dead workers -> crashed) and starts queued runs that have a free slot."""
from __future__ import annotations

import csv
import json
import os
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import config as schema
from ..experiments import KINDS, get_kind
from ..runner import control
from ..runner.control import launch
from ..runner.logs import follow, log_path, tail, tail_lines
from ..runner.reaper import reconcile
from ..runner.scheduler import maintain
from ..store import ACTIVE, QUEUED, Store
from ..display import group_label, safe_text, strict_json
from .format import Column, fit_table, literal, number, run_dict, run_time, status_text, step_text
from . import demo, generate, scoring, search
from .errors import UsageError
from .run_options import executor_from_args as _executor

out = Console(highlight=False)


def dispatch(args, parser) -> int:
    if args.command in (None, "ui"):  # at a terminal, main.py opens the TUI before this module is imported
        return cmd_ui(_open(args))
    name = "cmd_" + args.command.replace("-", "_")
    for module in (generate, scoring, search, demo):  # verbs of their own modules: bad input is a usage error
        if hasattr(module, name):
            try:
                return getattr(module, name)(_open(args), args)
            except ValueError as e:
                raise UsageError(str(e)) from None
    return globals()[name](_open(args), args)


def _open(args) -> Store:
    store = Store(args.db)
    maintain(store)
    return store


# -- launching ------------------------------------------------------------------------
def _report_new(store: Store, run_id: int, args, verb: str = "started") -> int:
    run = store.get_run(run_id)
    if getattr(args, "json", False):
        print(strict_json(run_dict(run)))
    else:
        where = (f"Slurm job {run.external_id}" if run.executor == "slurm" else
                 "waiting for a free slot" if run.status == QUEUED else f"pid {run.pid or '?'}")
        out.print(Text.assemble("run ", (str(run_id), "bold"), f" {verb} ({run.kind}, ", literal(where),
                                "); log: ", literal(log_path(run.run_dir))))
    if getattr(args, "follow", False):
        from .follow import follow

        return follow(store, run_id, out)
    return 0


def cmd_run(store: Store, args) -> int:
    executor, resources = _executor(args)
    run_id = launch(store, args.kind, schema.values_from_args(args), name=args.name, tags=args.tag,
                    executor=executor, resources=resources)
    return _report_new(store, run_id, args)


def cmd_clone(store: Store, args) -> int:
    src = store.get_run(args.run_id)
    kind = get_kind(src.kind)
    import argparse

    p = argparse.ArgumentParser(prog=f"tuigen clone {args.run_id}", description=f"options of kind {kind.name}")
    schema.add_arguments(p, kind.config)
    p.add_argument("--name", default="")
    p.add_argument("--tag", action="append", default=[])
    p.add_argument("--follow", "-f", action="store_true")
    p.add_argument("--json", action="store_true")
    overrides = p.parse_args(args.overrides)
    base = schema.from_json(kind.config, src.config)
    # a clone runs where its source ran, with the same resources
    run_id = launch(store, kind.name, schema.values_from_args(overrides), name=overrides.name,
                    tags=overrides.tag or [t for t in src.tags.split(",") if t], parent_id=src.id, base=base,
                    executor="slurm" if src.executor == "slurm" else "local",
                    resources=json.loads(src.resources or "{}") or None)
    return _report_new(store, run_id, overrides, verb=f"cloned from run {src.id}")


def cmd_resume(store: Store, args) -> int:
    control.resume(store, args.run_id, force=args.force)
    return _report_new(store, args.run_id, args, verb="resumed")


def cmd_exec(store: Store, args) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise UsageError("exec needs a command after --, e.g. tuigen exec -- python train.py")
    command = shlex.join(argv)
    executor, resources = _executor(args)
    run_id = launch(store, "exec", {"command": command, "cwd": args.cwd or os.getcwd()},
                    name=args.name or Path(argv[0]).name, tags=args.tag, executor=executor, resources=resources)
    return _report_new(store, run_id, args)


def cmd_kill(store: Store, args) -> int:
    ids = list(args.run_ids)
    if args.study:
        from ..runner import study

        for line in study.stop(store, args.study):
            out.print(line, markup=False)
        ids += [r.id for r in store.list_runs(study_id=store.get_study(args.study).id)]
    if args.sweep is not None:
        ids += _stop_sweep(store, args.sweep, force=args.force)
    if not (args.run_ids or args.sweep is not None or args.study):
        raise UsageError("kill needs run ids (the run_ids argument is required), --sweep ID or --study NAME")
    for run_id in args.run_ids:
        out.print(literal(control.stop(store, run_id, force=args.force)))
    if args.wait:
        _wait_stopped(store, ids, args.wait)
    return 0


def _stop_sweep(store: Store, sweep_id: int, *, force: bool) -> list[int]:
    """Queued runs first, so a run stopping does not hand its slot to the next of the sweep;
    then a second pass for any that started meanwhile."""
    runs = store.list_runs(sweep_id=sweep_id)
    if not runs:
        raise UsageError(f"--sweep {sweep_id}: no runs belong to a sweep with that id")
    asked: set[int] = set()  # a second SIGTERM means "stop now, no checkpoint": one each
    for _ in range(2):
        active = sorted(store.list_runs(sweep_id=sweep_id, status=ACTIVE), key=lambda r: r.status != QUEUED)
        for run in active:
            if run.id not in asked:
                asked.add(run.id)
                out.print(control.stop(store, run.id, force=force))
    if not any(r.status in ACTIVE for r in runs):
        out.print(f"sweep {sweep_id}: no active runs")
    return [r.id for r in runs]


def _wait_stopped(store: Store, ids, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reconcile(store)  # a worker that died on the signal is recorded, not waited for
        if all(store.get_run(i).status not in ACTIVE for i in ids):
            return
        time.sleep(0.2)


def cmd_rm(store: Store, args) -> int:
    runs = [store.get_run(i) for i in args.run_ids]
    active = [r for r in runs if r.status in ACTIVE]
    if active and not args.force:
        raise UsageError(f"run {active[0].id} is {active[0].status}; kill it first or pass --force")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("rm asks for confirmation; pass --yes when not at a terminal")
        answer = input(f"delete {len(runs)} run(s) {', '.join(str(r.id) for r in runs)} and their files? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            out.print("nothing deleted")
            return 1
    for r in runs:
        message = control.delete(store, r.id, force=True)
        if "; kept" in message:  # a folder that is not the run's own is never deleted
            print(f"tuigen: warning: {safe_text(message.split('; ', 1)[1])}", file=sys.stderr)
    out.print(f"deleted {len(runs)} run(s)")
    return 0


# -- looking ----------------------------------------------------------------------------
# The runs listing's columns; narrow terminals and pipes drop the highest `drop` first, and a
# name of up to 24 characters is never cut.
RUN_COLUMNS = (Column("id", right=True), Column("name", cap=24, least=12), Column("kind", drop=2),
               Column("dataset", drop=3), Column("status"), Column("step", right=True, drop=4),
               Column("loss", right=True, drop=5), Column("score", right=True, least=10), Column("time", drop=6),
               Column("device", drop=7), Column("sweep", drop=8))


def _runs_table(store: Store, runs) -> Table:
    from ..reports.run_score import run_scores

    ids = [r.id for r in runs]
    summaries, scores = store.summary(ids), run_scores(store, ids)
    studies = store.studies_of(ids)
    rows = []
    for r in runs:
        kind = KINDS.get(r.kind)
        metric = summaries.get(r.id, {}).get(kind.progress_metric if kind else "loss")
        score = scores.get(r.id)
        rows.append([Text(str(r.id)), literal(r.name), Text(r.kind), literal(r.dataset or "-"), status_text(r.status),
                     Text(step_text(r)), Text(number(metric.last) if metric else "-"),
                     Text(f"{score.label} {number(score.value)}" if score else ""), Text(run_time(r)),
                     literal(r.device or "-"), literal(group_label(r.sweep_id, studies.get(r.study_id), r.trial_number))])
    return fit_table(RUN_COLUMNS, rows, out.width)


def _score_json(score) -> dict | None:
    """The listing's score in --json: {"metric": "fid", "label": "FID", "value": 42.5}, or null."""
    return {"metric": score.metric, "label": score.label, "value": score.value} if score else None


def cmd_ls(store: Store, args) -> int:
    study_id = store.get_study(args.study).id if args.study else None
    runs = store.list_runs(kind=args.kind, status=args.status, dataset=args.dataset, tag=args.tag,
                           limit=args.limit or None, sweep_id=args.sweep, study_id=study_id)
    if args.json:
        from ..reports.run_score import run_scores

        ids = [r.id for r in runs]
        sums, scores = store.summary(ids), run_scores(store, ids)
        print(strict_json([{**run_dict(r, sums[r.id]), "score": _score_json(scores.get(r.id))} for r in runs]))
    elif not runs:
        out.print("no runs yet: start one with `tuigen run KIND` or `tuigen demo`")
    else:
        out.print(_runs_table(store, runs))
    return 0


def cmd_show(store: Store, args) -> int:
    run = store.get_run(args.run_id)
    summary = store.summary(run.id)
    arts, events = store.artifacts(run.id), store.events(run.id)
    if args.json:
        d = run_dict(run, summary)
        d["artifacts"] = [{"kind": a.kind, "key": a.key, "step": a.step, "path": a.path} for a in arts]
        d["events"] = [{"time": e.time, "level": e.level, "message": e.message} for e in events]
        print(strict_json(d))
        return 0
    out.print(Text.assemble((f"run {run.id} ", "bold"), literal(run.name), "  ", status_text(run.status),
                            f"  {run.kind} on ", literal(run.dataset or "-"), f"  step {step_text(run)}  {run_time(run)}"))
    out.print(Text.assemble(f"host {run.host or '-'}  pid {run.pid or '-'}  device {run.device or '-'}  dir ",
                            literal(run.run_dir)))
    out.print(literal(f"launched by {run.launched_by or '-'} on {run.launched_on or '-'}, attempt {run.attempt}"
                      + (f", from run {run.parent_id}" if run.parent_id else "")))
    if run.sweep_id or run.study_id:
        study = store.studies_of([run.id]).get(run.study_id)
        out.print(literal(f"trial {run.trial_number} of study {study}" if study else f"in sweep {run.sweep_id}"))
    if run.command:
        out.print(Text.assemble("command ", literal(run.command)))
    cfg = Table("option", "value", box=None, header_style="bold", title="config", title_justify="left")
    for k, v in json.loads(run.config or "{}").items():
        cfg.add_row(literal(k), literal(schema.format_value(tuple(v) if isinstance(v, list) else v)))
    out.print(cfg)
    if summary:
        mt = Table("metric", "last", "step", "min", "max", "points", box=None, header_style="bold",
                   title="metrics", title_justify="left")
        for k, s in sorted(summary.items()):
            mt.add_row(literal(k), number(s.last), str(s.last_step), number(s.min), number(s.max), str(s.count))
        out.print(mt)
    for a in arts:
        if a.kind == "text" and a.key == "model_summary" and Path(a.path).is_file():
            out.print(Text("model", style="bold"))
            out.print(literal(Path(a.path).read_text().rstrip(), block=True))
    if arts:
        out.print(Text("artifacts", style="bold"))
        for a in arts[-15:]:
            problem = _image_problem(a.path) if a.kind == "image" else None
            out.print(literal(f"  {a.kind:<10} {a.key:<16} step {a.step if a.step is not None else '-':<8} {a.path}"
                              + (f"  ({problem})" if problem else "")))
    if events:
        out.print(Text("events", style="bold"))
        for e in events[-10:]:
            out.print(literal(f"  {time.strftime('%H:%M:%S', time.localtime(e.time))} {e.level:<7} {e.message}"))
    if run.error:
        out.print(Text("error", style="bold red"))
        out.print(literal(run.error.rstrip(), block=True))
    last = tail(run.run_dir, 8) if not store.folder_problem(run) else ""
    if last:
        out.print(Text("output.log (last lines)", style="bold"))
        out.print(literal(last, block=True))
    return 0


def _image_problem(path: str) -> str | None:
    from ..viz.images import image_problem  # PIL only when a run has pictures

    return image_problem(path)


def cmd_logs(store: Store, args) -> int:
    run = store.get_run(args.run_id)
    folder = store.check_folder(run)
    path = log_path(folder)
    if not path.exists():
        out.print(Text.assemble(f"run {run.id} has no output yet (", literal(path), ")"))
        return 0
    # At a terminal the log is shown as text (escape sequences made visible); piped, it is copied as is.
    show = (lambda t: t) if args.raw or not sys.stdout.isatty() else (lambda t: safe_text(t, keep_newlines=True))
    lines = tail_lines(path, args.lines)
    sys.stdout.write(show("\n".join(lines)) + ("\n" if lines else ""))
    if not args.follow:
        return 0
    try:
        for text in follow(path, lambda: store.get_run(run.id).status in ACTIVE):
            sys.stdout.write(show(text))
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_export(store: Store, args) -> int:
    """Streams the points (memory bounded by one batch, whatever the run's size). JSON: non-finite
    values are null."""
    run = store.get_run(args.run_id)
    try:
        dest = open(args.output, "w", newline="") if args.output else sys.stdout
    except OSError as e:
        raise UsageError(f"-o {args.output}: cannot write a file there ({e.strerror}); "
                         "expected a file path in an existing folder") from None
    n = 0
    try:
        if args.format == "csv":
            w = csv.writer(dest)
            w.writerow(["run_id", "key", "step", "value", "wall_time"])
            for p in store.iter_metrics(run.id):
                w.writerow([run.id, p.key, p.step, repr(p.value), f"{p.wall_time:.3f}"])
                n += 1
        else:
            head = strict_json(run_dict(run, store.summary(run.id)))
            dest.write(head[:-1] + ', "points": [')
            for p in store.iter_metrics(run.id):
                dest.write((", " if n else "") + strict_json({"key": p.key, "step": p.step, "value": p.value,
                                                              "wall_time": p.wall_time}))
                n += 1
            dest.write("]}\n")
    finally:
        if args.output:
            dest.close()
    if args.output:
        print(f"wrote {n} points of run {run.id} to {args.output}", file=sys.stderr)
    return 0


def cmd_ui(store: Store) -> int:
    """Without a terminal (scripts, CI): the runs table once."""
    runs = store.list_runs(limit=40)
    out.print(_runs_table(store, runs) if runs else "no runs yet: start one with `tuigen run KIND` or `tuigen demo`")
    return 0
