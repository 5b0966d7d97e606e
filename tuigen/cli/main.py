"""Argument parsing for every `tuigen` verb. Each kind's flags come from its config schema."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .. import config as schema
from .. import settings
from ..errors import InputError, TuigenError
from ..experiments import KINDS
from ..store import STATUSES
from . import demo, generate, scoring, search
from .argtypes import bounded
from .run_options import add_run_options as _add_run_options

EPILOG = """examples:
  tuigen demo                                 start small real runs of every kind
  tuigen run classifier --dataset mnist --lr 3e-4 --follow
  tuigen ls --status running
  tuigen show 3
  tuigen resume 3
  tuigen clone 3 --lr 1e-4
  tuigen exec -- python train.py --epochs 10
  tuigen run ddpm --executor slurm --partition gpu --gpus 1 --time 04:00:00
  tuigen sample 5 -n 2048 --sampler ddim --steps 50 --format npz
  tuigen sweep ddpm --lr '1e-3|5e-4' --channels '64|128'
  tuigen tune ddpm --trials 20 --metric fid --lr 'log:1e-4:1e-2' --fid_every 500
  tuigen report --sweep 1 -o sweep1/

store: --db URL, else $TUIGEN_DB, else sqlite:///runs.db in this folder"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tuigen", description="A terminal experiment manager for generative models.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default=None, help="store URL or SQLite file (default: $TUIGEN_DB or ./runs.db)")
    p.add_argument("--allow-network-sqlite", action="store_true",
                   help="use a SQLite store on NFS/SMB/Lustre/... anyway (unsafe with several hosts; "
                        "a shared store should be PostgreSQL)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    ui = sub.add_parser("ui", help="the TUI: live runs, curves, leaderboard, system (the default command)")
    ui.add_argument("--once", action="store_true", help="print the runs table once and exit (no TUI)")
    ui.add_argument("--images", choices=settings.IMAGE_PROTOCOLS,
                    help="how pictures are drawn (default: $TUIGEN_IMAGES or auto-detect; halfcell works everywhere)")

    run = sub.add_parser("run", help="start a run of an experiment kind",
                         description="Start a run. `tuigen run KIND --help` lists that kind's options.")
    kinds = run.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind in KINDS.values():
        kp = kinds.add_parser(kind.name, help=kind.summary, description=kind.summary,
                              epilog=f"example:\n  tuigen run {kind.name} {_example_flags(kind)} --follow",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        schema.add_arguments(kp, kind.config)
        _add_run_options(kp)

    ls = sub.add_parser("ls", help="list runs")
    ls.add_argument("--kind", choices=list(KINDS))
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--dataset")
    ls.add_argument("--tag")
    ls.add_argument("--sweep", type=int, metavar="ID", help="only the runs of this sweep")
    ls.add_argument("--study", metavar="NAME", help="only the trials of this study")
    ls.add_argument("--limit", type=bounded(int, 0), default=50, help="newest N runs (default 50; 0 = all)")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    show = sub.add_parser("show", help="a run's config, metrics, artifacts, events and log tail")
    show.add_argument("run_id", type=int)
    show.add_argument("--json", action="store_true")

    logs = sub.add_parser("logs", help="print a run's output.log")
    logs.add_argument("run_id", type=int)
    logs.add_argument("-n", "--lines", type=bounded(int, 0), default=40, help="last N lines (0 = all)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing while the run is active")
    logs.add_argument("--raw", action="store_true",
                      help="copy the log as is (the default when piped); at a terminal escape sequences are shown, "
                           "not run")

    kill = sub.add_parser("kill", help="stop runs (SIGTERM: the run checkpoints, then exits)")
    kill.add_argument("run_ids", type=int, nargs="*")
    kill.add_argument("--sweep", type=int, metavar="ID", help="every active run of this sweep (queued ones first)")
    kill.add_argument("--study", metavar="NAME", help="this study's driver and its active trials")
    kill.add_argument("--force", action="store_true", help="SIGKILL now, no checkpoint")
    kill.add_argument("--wait", type=bounded(float, 0), default=0.0, metavar="SECONDS",
                      help="wait up to this long for the runs to stop")

    resume = sub.add_parser("resume", help="continue a killed/crashed/failed run from its latest checkpoint")
    resume.add_argument("run_id", type=int)
    resume.add_argument("--follow", "-f", action="store_true")
    resume.add_argument("--force", action="store_true",
                        help="resume an unknown run although its last worker may still be alive")

    clone = sub.add_parser("clone", help="start a new run from a run's config, with changes",
                           description="Start a new run from RUN_ID's config; any option of its kind "
                                       "may follow (e.g. tuigen clone 3 --lr 1e-4).")
    clone.add_argument("run_id", type=int)
    clone.add_argument("overrides", nargs=argparse.REMAINDER, help="--option value pairs of the run's kind")

    rm = sub.add_parser("rm", help="delete runs and their files")
    rm.add_argument("run_ids", type=int, nargs="+")
    rm.add_argument("-y", "--yes", action="store_true", help="do not ask")
    rm.add_argument("--force", action="store_true", help="kill active runs first")

    export = sub.add_parser("export", help="a run's metrics as CSV or JSON")
    export.add_argument("run_id", type=int)
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")

    ex = sub.add_parser("exec", help="run any command as a recorded run; key=value output becomes metrics",
                        description="Run a command as a recorded run. Put it after --: "
                                    "tuigen exec -- python train.py --lr 1e-3")
    ex.add_argument("argv", nargs=argparse.REMAINDER, help="the command, after --")
    ex.add_argument("--cwd", default="", help="folder to run it in")
    _add_run_options(ex)

    generate.add_parsers(sub)
    scoring.add_parsers(sub)
    search.add_parsers(sub, _add_run_options)

    demo.add_parser(sub)
    return p


def _example_flags(kind) -> str:
    example = kind.demo[0] if kind.demo else {}
    return " ".join(f"--{k} {schema.format_value(v)}" for k, v in example.items() if k != "command") or ""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..store.filesystems import ALLOW_ENV

    if args.allow_network_sqlite:
        os.environ[ALLOW_ENV] = "1"  # the environment, so workers started from here inherit it
    try:
        settings.check_environment()  # a bad TUIGEN_* value stops the command before it acts
        if _interactive(args):
            return _tui(args)
        from . import commands  # after parsing: --help stays instant

        return commands.dispatch(args, parser)
    except _usage_errors() as e:
        _error(e)
        return 2
    except TuigenError as e:  # a damaged, locked or full store or file: its message names it
        _error(e)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one sentence, not a traceback, for failures outside our control
        from sqlalchemy.exc import SQLAlchemyError

        from ..store.engine import explain, resolve_url

        if isinstance(e, (SQLAlchemyError, OSError)):
            message = isinstance(e, SQLAlchemyError) and explain(resolve_url(args.db), e)
            _error(message or f"{type(e).__name__}: {e}")
            return 1
        raise


def _usage_errors() -> tuple[type, ...]:
    """Errors of the user's input (exit 2), looked up only when something was raised: naming
    RunNotFound imports the store, which the TUI's first frame does without."""
    from ..store import RunNotFound, StudyNotFound
    from ..store.filesystems import NetworkFilesystemError

    return InputError, RunNotFound, StudyNotFound, NetworkFilesystemError


def _interactive(args) -> bool:
    return args.command in (None, "ui") and not getattr(args, "once", False) and sys.stdout.isatty() \
        and sys.stdin.isatty()


def _tui(args) -> int:
    """The TUI, given the store's URL: it draws its first frame, then opens the store. A store
    that cannot be opened ends it, and its error is reported as any command's would be."""
    if getattr(args, "images", None):
        os.environ["TUIGEN_IMAGES"] = args.images
    import threading

    asking = threading.Thread(target=_ask_terminal, daemon=True)  # while textual imports
    asking.start()
    from ..tui.app import TuigenApp

    app = TuigenApp(args.db or os.environ.get("TUIGEN_DB") or "runs.db")  # the store resolves it, as for any verb
    asking.join()  # before Textual reads stdin: the terminal's answers are not key presses
    app.run()
    if app.store_error is not None:
        raise app.store_error
    return app.return_code or 0


def _ask_terminal() -> None:
    from ..tui.widgets.picture import ask_terminal

    ask_terminal()


def _error(e: object) -> None:
    """One line on stderr; what it quotes of the user's input is shown literally."""
    from ..display import safe_text

    lines = str(e).strip().splitlines() or [""]
    print(f"tuigen: error: {safe_text(lines[0])}", file=sys.stderr)
