"""The options every launching verb shares (run, exec, sweep, tune): name, tags, --json, and
where the run goes (the executor and its resources)."""
from __future__ import annotations

import argparse

from .argtypes import bounded
from .errors import UsageError


def add_run_options(p: argparse.ArgumentParser, follow: bool = True) -> None:
    g = p.add_argument_group("run options")
    g.add_argument("--name", default="", help="a name to find the run by (default: KIND-ID)")
    g.add_argument("--tag", action="append", default=[], help="a tag; repeat for several")
    if follow:
        g.add_argument("--follow", "-f", action="store_true",
                       help="show a live progress bar; Ctrl-C stops following, not the run")
    g.add_argument("--json", action="store_true", help="print the new run as JSON")
    x = p.add_argument_group("executor options")
    x.add_argument("--executor", choices=("local", "slurm"), default="local",
                   help="where the worker runs: here (local, default) or in a Slurm job submitted with sbatch")
    x.add_argument("--partition", help="Slurm partition (default: the cluster's default)")
    x.add_argument("--gpus", type=bounded(int, 1), metavar="N",
                   help="GPUs for the run; more than one trains data-parallel (DDP under torchrun), "
                        "locally or in the Slurm job (sbatch --gpus)")
    x.add_argument("--processes", type=bounded(int, 1), metavar="N",
                   help="train data-parallel on N CPU processes (DDP with gloo), for machines without GPUs")
    x.add_argument("--time", metavar="LIMIT", help="Slurm time limit, e.g. 02:00:00 (sbatch --time)")
    x.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                   help="an extra sbatch option, written with '=': --sbatch-arg=--mem=16G; repeat for several")
    x.add_argument("--signal-before", type=bounded(int, 1), metavar="SECONDS",
                   help="Slurm sends SIGUSR1 this long before the job ends (time limit, preemption): "
                        "the run checkpoints and is requeued, then resumes (default: 120)")


SLURM_FLAGS = {"partition": "--partition", "time": "--time", "sbatch_args": "--sbatch-arg",
               "signal_before": "--signal-before"}


def executor_from_args(args) -> tuple[str, dict | None]:
    """--executor and its options as launch() takes them: (executor, resources)."""
    given = {"partition": args.partition, "gpus": args.gpus, "processes": args.processes, "time": args.time,
             "sbatch_args": args.sbatch_arg, "signal_before": args.signal_before}
    resources = {k: v for k, v in given.items() if v not in (None, [], "")}  # (bounds: argtypes)
    if args.executor != "slurm":
        slurm_only = [k for k in resources if k in SLURM_FLAGS]
        if slurm_only:
            raise UsageError(f"{SLURM_FLAGS[slurm_only[0]]} needs --executor slurm")
        return args.executor, resources or None
    return "slurm", resources
