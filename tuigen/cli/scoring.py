"""CLI verbs that score runs and rank them: fid, accuracy, board, dann-table."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..display import safe_text, strict_json
from ..experiments import KINDS
from ..metrics.modes import DEFAULT_METHOD, DEFAULT_MODE, FID_METHODS, FID_MODES
from ..reports.dann_table import RULES as DANN_RULES
from .argtypes import bounded, device
from .generate import _Bar, _progress, out

if TYPE_CHECKING:
    from ..store import Store


def add_parsers(sub) -> None:
    f = sub.add_parser("fid", help="FID and KID: of two image folders, or of a run's samples against its dataset",
                       description="tuigen fid DIR_A DIR_B compares two folders (like pytorch-fid); "
                                   "tuigen fid RUN samples N images from a diffusion run and compares them "
                                   "with the run's dataset, storing the score with its provenance.",
                       epilog="examples:\n  tuigen fid real/ fake/\n  tuigen fid 5 -n 2048 --sampler ddim --steps 50",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    f.add_argument("targets", nargs="+", metavar="RUN | DIR_A DIR_B")
    f.add_argument("-n", "--num", type=bounded(int, 2), default=2048, help="samples to draw from a run (default 2048)")
    f.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim")
    f.add_argument("--steps", type=bounded(int, 1), default=50)
    f.add_argument("--eta", type=bounded(float, 0), default=0.0)
    f.add_argument("--guidance", type=float, default=0.0)
    f.add_argument("--batch", type=bounded(int, 1), default=64)
    f.add_argument("--checkpoint")
    f.add_argument("--weights", choices=("ema", "raw"), default="ema")
    f.add_argument("--device", type=device, default="auto")
    f.add_argument("--seed", type=bounded(int, 0), default=0)
    f.add_argument("--mode", choices=list(FID_MODES), default=DEFAULT_MODE,
                   help="; ".join(f"{m.name}: {m.definition}" for m in FID_MODES.values()) + f" (default {DEFAULT_MODE})")
    f.add_argument("--fid-method", choices=FID_METHODS, default=DEFAULT_METHOD,
                   help="tr sqrt(S1 S2) by eigh (symmetric eigendecompositions) or pytorch-fid (scipy's sqrtm, "
                        f"slower); they agree to 1e-6 (default {DEFAULT_METHOD})")
    f.add_argument("--json", action="store_true")

    a = sub.add_parser("accuracy", help="evaluator accuracy of a conditional run's samples (cond-ddpm, cgan; stored "
                                        "with provenance)",
                       epilog="example: tuigen accuracy 7 --guidance 2   (and --guidance 0 for the unguided number)")
    a.add_argument("run_id", type=int)
    a.add_argument("--guidance", type=float, default=0.0, help="w: eps = (1+w) eps_cond - w eps_uncond; 0 = unguided")
    a.add_argument("--per_class", type=bounded(int, 1), default=100, help="samples per class for class labels (default 100)")
    a.add_argument("--labels", choices=("test", "new_test"), default="test", help="shapes: which fixed label set")
    a.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddim")
    a.add_argument("--steps", type=bounded(int, 1), default=50)
    a.add_argument("--batch", type=bounded(int, 1), default=100)
    a.add_argument("--checkpoint")
    a.add_argument("--weights", choices=("ema", "raw"), default="ema")
    a.add_argument("--device", type=device, default="auto")
    a.add_argument("--seed", type=bounded(int, 0), default=0)
    a.add_argument("--json", action="store_true")

    b = sub.add_parser("board", help="leaderboard: runs ranked by a score, within one provenance")
    b.add_argument("--metric", default="fid", help="fid, kid, accuracy, ... (default fid)")
    b.add_argument("--dataset")
    b.add_argument("--kind", choices=list(KINDS))
    b.add_argument("--provenance", help="rank this provenance (default: the one most runs share)")
    b.add_argument("--sweep", type=int, metavar="ID", help="only the runs of this sweep")
    b.add_argument("--study", metavar="NAME", help="a study's trials ranked by its objective (pruned ones after)")
    b.add_argument("--best", action="store_true",
                   help="each run's best score over all its evaluations (default: its score at its newest "
                        "evaluated checkpoint, so runs scored often gain nothing from it)")
    b.add_argument("--json", action="store_true")

    d = sub.add_parser("dann-table", help="target accuracy: source-only / DANN / target-only per scenario",
                       description="Each cell is the mean (± sd) over completed dann runs of that mode and scenario "
                                   "of each run's target accuracy at an epoch chosen without target labels.")
    d.add_argument("--rule", choices=list(DANN_RULES), default="last",
                   help="; ".join(f"{k}: {v}" for k, v in DANN_RULES.items()) + " (default last)")
    d.add_argument("--with-ids", action="store_true", help="show the run behind each number")
    d.add_argument("--tag")
    d.add_argument("--project")
    d.add_argument("--json", action="store_true")


def cmd_board(store: Store, args) -> int:
    from ..experiments import scores
    from ..reports.leaderboard import format_board, leaderboard

    if args.study:
        return _study_board(store, args)
    among = {}
    if args.sweep is not None:
        among["run_ids"] = [r.id for r in store.list_runs(sweep_id=args.sweep)]
        if not among["run_ids"]:
            raise ValueError(f"--sweep {args.sweep}: no runs belong to a sweep with that id")
    board = leaderboard(store, args.metric, dataset=args.dataset, kind=args.kind, provenance_key=args.provenance,
                        best=args.best, **among)
    if board.provenance_key is None and args.metric not in scores():  # likely a typo, not an empty board
        raise ValueError(f"--metric {args.metric}: no scores by that name; expected one of "
                         f"{', '.join(sorted(scores()))} or another recorded score")
    if args.json:
        print(strict_json({"metric": board.metric, "higher_is_better": board.higher_is_better, "rule": board.rule,
                          "provenance": board.provenance, "provenance_key": board.provenance_key,
                          "columns": board.columns, "rows": [vars(r) for r in board.rows],
                          "not_ranked": [{"provenance_key": k, "runs": n, "provenance": p} for k, n, p in board.others]}))
    else:
        print(format_board(board))
    return 0


def _study_board(store: Store, args) -> int:
    from ..display import strict_json
    from ..reports.study_board import format_study_board, study_board, study_board_dict

    board = study_board(store, args.study)
    print(strict_json(study_board_dict(board)) if args.json else format_study_board(board))
    return 0


def cmd_accuracy(store: Store, args) -> int:
    from ..generate.scoring import SamplerSettings, accuracy_of_run
    from ..generate.loading import GENERATIVE, load_trained

    settings = SamplerSettings(args.sampler, None if args.sampler == "ddpm" else args.steps, 0.0, args.guidance,
                               args.batch, args.seed)
    _, _, trained = load_trained(store, args.run_id, checkpoint=args.checkpoint, weights=args.weights,
                                 device=args.device, kinds=GENERATIVE)
    per_batch = 1 if trained.is_gan else len(trained.diffusion.timesteps_for(args.sampler, settings.steps))
    n = args.per_class * trained.cond.size if trained.cond.kind == "class" else 32
    t0 = time.perf_counter()
    with _progress() as bar:
        tick = _Bar(bar, f"sampling run {args.run_id} for accuracy", per_batch * -(-n // args.batch))
        acc, prov = accuracy_of_run(store, args.run_id, settings=settings, per_class=args.per_class,
                                    which=args.labels, checkpoint=args.checkpoint, weights=args.weights,
                                    device=args.device, on_sample=tick)
    if args.json:
        print(strict_json({"accuracy": acc, "provenance": prov}))
    else:
        print(f"accuracy {acc:.4f} on {prov['n']} samples ({prov['labels']}, guidance w={args.guidance:g}, "
              f"evaluator held-out accuracy {prov['evaluator_held_out_accuracy']}); {time.perf_counter() - t0:.0f}s")
    return 0


def cmd_fid(store: Store, args) -> int:
    from ..generate.scoring import SamplerSettings, fid_of_folders, fid_of_run

    targets = args.targets
    if len(targets) == 1 and targets[0].isdigit():
        settings = SamplerSettings(args.sampler, None if args.sampler == "ddpm" else args.steps, args.eta,
                                   args.guidance, args.batch, args.seed)
        with _progress() as bar:
            result = fid_of_run(store, int(targets[0]), n=args.num, settings=settings, checkpoint=args.checkpoint,
                                weights=args.weights, device=args.device, bar=bar, bar_factory=_Bar,
                                mode=args.mode, fid_method=args.fid_method)
        skipped = []
    elif len(targets) == 2:
        for t in targets:
            if not Path(t).is_dir():
                raise ValueError(f"{t} is not a folder; use tuigen fid DIR_A DIR_B or tuigen fid RUN")
        with _progress() as bar:
            result, skipped = fid_of_folders(targets[0], targets[1], device=args.device, bar=bar, bar_factory=_Bar,
                                             mode=args.mode, fid_method=args.fid_method)
    else:
        raise ValueError("fid takes a run id, or two folders: tuigen fid RUN | tuigen fid DIR_A DIR_B")
    _print_skipped(skipped)
    if result.warning:
        out.print(f"[yellow]warning:[/] {result.warning}")
    if args.json:
        print(strict_json({"fid": result.fid, "kid_mean": result.kid_mean, "kid_std": result.kid_std,
                          "comparable": result.comparable, "provenance": result.provenance,
                          "skipped": [{"folder": d, "files": [{"file": f, "reason": why} for f, why in files]}
                                      for d, files in skipped]}))
    else:
        print(f"FID {result.fid:.4f}  KID {result.kid_mean:.5f} ± {result.kid_std:.5f}  "
              f"(N = {result.n_a} vs {result.n_b})")
    return 0


def _print_skipped(skipped: list[tuple[str, list[tuple[str, str]]]]) -> None:
    """Each folder's skipped files on stderr, named with their reasons (the first 20, then a count)."""
    from ..data.folder import skipped_lines

    for folder, files in skipped:
        if files:
            out.print(safe_text(f"{folder}: {len(files)} file(s) skipped"), markup=False)
            for line in skipped_lines(files):
                out.print(safe_text(f"  {line}"), markup=False)


def cmd_dann_table(store: Store, args) -> int:
    from ..reports.dann_table import dann_table, dann_table_dict, format_dann_table

    columns, rows = dann_table(store, rule=args.rule, tag=args.tag, project=args.project)
    print(strict_json(dann_table_dict(columns, rows, rule=args.rule)) if args.json
          else format_dann_table(columns, rows, rule=args.rule, with_ids=args.with_ids))
    return 0
