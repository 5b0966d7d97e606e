"""CLI verbs from a grid of knobs to the report table: sweep, tune, report."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .. import config as schema
from ..display import safe_text, strict_json
from ..experiments import KINDS, get_kind
from .argtypes import bounded
from .errors import UsageError
from .run_options import executor_from_args

if TYPE_CHECKING:
    from ..store import Store

SWEEP_EPILOG = """examples:
  tuigen sweep ddpm --lr '1e-3|5e-4' --channels '64|128' --max-parallel 2
  tuigen sweep ddpm --dim_mults '1,2,4|1,2,4,8' --seed '0|1|2'
  tuigen sweep ddpm --lr '1e-3|5e-4|1e-4' --channels '32|64|128' --random 4 --random-seed 1

Several values of a knob are separated by '|' (a comma stays inside a list value). Every
value is checked before any run is queued. --seed is the kind's own knob (sweep it for repeats)."""

TUNE_EPILOG = """examples:
  tuigen tune ddpm --trials 20 --metric fid --lr 'log:1e-4:1e-2' --channels '32|64|128' \\
      --fid_every 500 --prune median --train_num_steps 3000
  tuigen tune --resume ddpm-fid-20260101-120000 --trials 30
  tuigen board --study ddpm-fid-20260101-120000

Knob values: log:LOW:HIGH (log-uniform), LOW:HIGH (uniform; integers for integer knobs),
a|b|c (choices), or one value (fixed). The objective (--metric: --objective is a diffusion
knob) is each trial's stored score of that name
at its newest evaluated checkpoint (the periodic FID of --fid_every), or the last value of a
logged metric; its earlier values are what the pruner sees."""


def _kind_parsers(kinds, epilog: str):
    """One subcommand per experiment kind, its knobs from the kind's config schema."""
    for kind in KINDS.values():
        kp = kinds.add_parser(kind.name, help=kind.summary, epilog=epilog,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        schema.add_arguments(kp, kind.config)
        yield kp


def add_parsers(sub, add_run_options) -> None:
    sw = sub.add_parser("sweep", help="queue a grid (or random draws) of runs: --lr '1e-3|5e-4' --channels '64|128'",
                        description="Queue one run per combination of the values given ('|' between values).",
                        epilog=SWEEP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for kp in _kind_parsers(sw.add_subparsers(dest="kind", metavar="KIND", required=True), SWEEP_EPILOG):
        g = kp.add_argument_group("sweep options")
        g.add_argument("--max-parallel", type=bounded(int, 1), metavar="N", help="at most N of its runs at once")
        g.add_argument("--random", type=bounded(int, 1), metavar="K", help="K distinct random combinations of the grid")
        g.add_argument("--random-seed", type=bounded(int, 0), default=0, metavar="S",
                       help="seed of the --random draws (default 0)")
        add_run_options(kp, follow=False)

    tu = sub.add_parser("tune", help="search hyperparameters with Optuna; each trial is a run",
                        description="Start (or --resume) an Optuna study whose trials are tuigen runs. "
                                    "`tuigen tune KIND --help` lists the kind's knobs.",
                        epilog=TUNE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    tu.add_argument("--resume", metavar="STUDY", help="continue a study whose driver stopped (add trials with --trials)")
    tu.add_argument("--trials", type=bounded(int, 1), metavar="N", help="with --resume: the new total of trials")
    tu.add_argument("--json", action="store_true")
    for kp in _kind_parsers(tu.add_subparsers(dest="kind", metavar="KIND"), TUNE_EPILOG):
        g = kp.add_argument_group("study options")
        g.add_argument("--trials", type=bounded(int, 1), required=True, metavar="N", help="how many trials")
        g.add_argument("--metric", required=True, metavar="NAME",
                       help="a score (fid, kid, accuracy, ...) or a logged metric to optimise")
        g.add_argument("--direction", choices=("minimize", "maximize"),
                       help="default: the score's own direction (fid: minimize, accuracy: maximize)")
        g.add_argument("--prune", choices=("median", "none"), default="median",
                       help="stop trials whose intermediate objective is worse than the median of completed ones")
        g.add_argument("--prune-startup", type=bounded(int, 0), default=5, metavar="N",
                       help="completed trials before the pruner may stop one (default 5)")
        g.add_argument("--prune-warmup", type=bounded(int, 0), default=0, metavar="STEPS",
                       help="steps of a trial before it may be pruned (default 0)")
        g.add_argument("--sampler", choices=("tpe", "random"), default="tpe", help="Optuna sampler (default tpe)")
        g.add_argument("--sampler-seed", type=bounded(int, 0), default=0, metavar="S", help="the sampler's seed")
        g.add_argument("--max-parallel", type=bounded(int, 1), default=1, metavar="N",
                       help="trials in flight at once (default 1: each trial informs the next)")
        add_run_options(kp, follow=False)

    rp = sub.add_parser("report", help="report.md + standalone report.html of runs, a sweep, a study or a board",
                        epilog="examples:\n  tuigen report 3 4 5 -o report/\n  tuigen report --sweep 2 -o sweep2/\n"
                               "  tuigen report --study cats -o cats/\n  tuigen report --board --metric fid --dataset mnist",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("run_ids", type=int, nargs="*", metavar="RUN")
    rp.add_argument("--sweep", type=int, metavar="ID")
    rp.add_argument("--study", metavar="NAME")
    rp.add_argument("--board", action="store_true", help="the runs the leaderboard ranks (with --metric, --dataset, ...)")
    rp.add_argument("--metric", default="fid", help="--board: the score ranked (default fid)")
    rp.add_argument("--dataset", help="--board: only this dataset")
    rp.add_argument("--kind", choices=list(KINDS), help="--board: only this kind")
    rp.add_argument("--provenance", help="--board: this provenance (default: the one most runs share)")
    rp.add_argument("-o", "--output", metavar="DIR", help="folder to write (default: report-WHAT-TIME)")
    rp.add_argument("--title", help="the report's title")
    rp.add_argument("--json", action="store_true")


# -- sweep ------------------------------------------------------------------------------------
def cmd_sweep(store: Store, args) -> int:
    from ..runner import control
    from ..runner.sweeps import grid_of

    kind = get_kind(args.kind)
    values, grid = grid_of(kind.config, schema.values_from_args(args))
    executor, resources = executor_from_args(args)
    ids = control.launch_sweep(store, kind.name, grid, base_values=values, name=args.name, tags=args.tag,
                               max_parallel=args.max_parallel, random=args.random, seed=args.random_seed,
                               executor=executor, resources=resources)
    sweep_id = store.get_run(ids[0]).sweep_id
    if args.json:
        print(strict_json({"sweep_id": sweep_id, "runs": ids}))
    elif sweep_id is None:
        print(f"run {ids[0]} queued (every knob has one value, so no sweep)")
    else:
        print(f"sweep {sweep_id}: {len(ids)} runs queued ({ids[0]}..{ids[-1]}); "
              f"tuigen ls --sweep {sweep_id}, tuigen board --sweep {sweep_id}, tuigen report --sweep {sweep_id}")
    return 0


# -- tune -------------------------------------------------------------------------------------
def cmd_tune(store: Store, args) -> int:
    from ..runner import study

    if args.resume:
        if args.kind:
            raise UsageError("--resume continues a study as it was defined; give no KIND or knobs with it")
        study_id = study.resume(store, args.resume, trials=args.trials)
        verb = "resumed"
    else:
        if not args.kind:
            raise UsageError("tune needs a KIND (tuigen tune ddpm --trials 20 --metric fid --lr log:1e-4:1e-2) "
                             "or --resume STUDY")
        executor, resources = executor_from_args(args)
        study_id = study.create(store, args.kind, schema.values_from_args(args), trials=args.trials,
                                objective=args.metric, direction=args.direction, name=args.name,
                                max_parallel=args.max_parallel, sampler=args.sampler, seed=args.sampler_seed,
                                pruner=args.prune, prune_startup=args.prune_startup, prune_warmup=args.prune_warmup,
                                executor=executor, resources=resources, tags=args.tag)
        verb = "started"
    row = next(s for s in store.list_studies() if s.id == study_id)
    log = study.driver_log(store, study_id)
    if args.json:
        print(strict_json({"study": row.name, "id": row.id, "driver_pid": row.driver_pid, "log": str(log)}))
    else:
        print(f"study {safe_text(row.name)} {verb}: driver pid {row.driver_pid} (log {log}); "
              f"tuigen board --study {safe_text(row.name)} ranks its trials")
    return 0


# -- report -----------------------------------------------------------------------------------
def cmd_report(store: Store, args) -> int:
    from ..reports import report as rep

    sources = [bool(args.run_ids), args.sweep is not None, bool(args.study), args.board]
    if sum(sources) != 1:
        raise UsageError("report takes one of: RUN ids, --sweep ID, --study NAME or --board "
                         "(e.g. tuigen report --sweep 2 -o sweep2/)")
    if args.run_ids:
        for i in args.run_ids:
            store.get_run(i)  # a missing run is named before anything is written
        chosen, what = rep.Selection(list(args.run_ids), "Runs " + ", ".join(map(str, args.run_ids))), "runs"
    elif args.sweep is not None:
        chosen, what = rep.sweep_runs(store, args.sweep), f"sweep{args.sweep}"
    elif args.study:
        chosen, what = rep.study_runs(store, args.study), f"study-{args.study}"
    else:
        chosen, what = _board_runs(store, args), f"board-{args.metric}"
    out_dir = chosen.write(store, args.output or rep.default_folder(what), args.title)
    ids = chosen.run_ids
    if args.json:
        print(strict_json({"folder": str(out_dir), "markdown": str(out_dir / "report.md"),
                           "html": str(out_dir / "report.html"), "runs": ids}))
    else:
        print(f"wrote {out_dir / 'report.md'} and {out_dir / 'report.html'} ({len(ids)} runs)")
    return 0


def _board_runs(store: Store, args):
    from ..reports.leaderboard import leaderboard
    from ..reports.report import Selection

    board = leaderboard(store, args.metric, dataset=args.dataset, kind=args.kind, provenance_key=args.provenance)
    if not board.rows:
        raise UsageError(f"--board: no {args.metric} scores to rank" + (f" on {args.dataset}" if args.dataset else ""))
    title = f"Leaderboard: {args.metric}" + (f" on {args.dataset}" if args.dataset else "")
    order = ", ".join(f"{r.rank}. run {r.run_id} ({r.value:.4g})" for r in board.rows)
    return Selection([r.run_id for r in board.rows], title, [f"Ranked within provenance {board.provenance_key}: {order}"])

