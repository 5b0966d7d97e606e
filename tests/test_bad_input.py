"""A bad-input corpus for every `tuigen` verb: wrong types, out-of-range values, unknown flags,
missing runs and files, unusable store paths, unreadable folders, and checkpoints that do not
match their run's config. Each case must exit non-zero (2 for usage errors) with a message
naming the input and what was expected, and print no traceback.

The verbs come from the real parser, so a new verb without cases here fails
test_every_verb_has_cases. Cases that need trained runs share two tiny real ones (a ddpm and a
dcgan run, 2 steps on 8x8 digits) in one store, passed with --db."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_for
from tuigen import config as schema
from tuigen.cli import main
from tuigen.cli.main import build_parser
from tuigen.experiments import KINDS

USAGE, FAILURE = 2, 1

# (verb, argv template, exit code, words the error must contain). Templates name the shared
# fixtures: {db} store, {ddpm} {gan} trained runs, {ddpm_ckpt} {gan_ckpt} their checkpoints,
# {edited} {edited_gan} runs whose stored config disagrees with their checkpoint, {nodata} a run
# whose dataset folder is gone, {file} a regular file, {garbage} a file that is no checkpoint,
# {dir} an empty folder, {one} a folder with one image.
CASES = [
    ("ui", "ui --bogus", USAGE, ["--bogus"]),
    ("ui", "ui --once --images nope", USAGE, ["--images", "nope", "halfcell"]),
    ("ui", "--db {dir} ui --once", FAILURE, ["{dir}", "is a folder", "SQLite file"]),
    ("ls", "ls --limit abc", USAGE, ["--limit", "expected an integer", "abc"]),
    ("ls", "ls --limit -1", USAGE, ["--limit", "must be >= 0", "-1"]),
    ("ls", "ls --status nope", USAGE, ["--status", "nope", "running"]),
    ("ls", "ls --bogus", USAGE, ["--bogus"]),
    ("ls", "--db {file}/sub/runs.db ls", FAILURE, ["{file}", "cannot be created", "a file is in the way"]),
    ("ls", "--db {dir} ls", FAILURE, ["{dir}", "is a folder", "SQLite file"]),
    ("ls", "--db {garbage} ls", FAILURE, ["{garbage}", "not a tuigen store"]),
    ("show", "show 999", USAGE, ["no run with id 999"]),
    ("show", "show abc", USAGE, ["run_id", "invalid int value", "abc"]),
    ("show", "show {ddpm} --bogus", USAGE, ["--bogus"]),
    ("logs", "logs 999", USAGE, ["no run with id 999"]),
    ("logs", "logs {ddpm} -n -5", USAGE, ["-n/--lines", "must be >= 0", "-5"]),
    ("logs", "logs {ddpm} -n many", USAGE, ["-n/--lines", "expected an integer", "many"]),
    ("kill", "kill 999", USAGE, ["no run with id 999"]),
    ("kill", "kill", USAGE, ["run_ids", "required"]),
    ("kill", "kill {ddpm} --wait -1", USAGE, ["--wait", "must be >= 0", "-1"]),
    ("kill", "kill {ddpm} --wait soon", USAGE, ["--wait", "expected a number", "soon"]),
    ("resume", "resume 999", USAGE, ["no run with id 999"]),
    ("resume", "resume {ddpm}", USAGE, ["run {ddpm} is completed", "can resume"]),
    ("resume", "resume {ddpm} --bogus", USAGE, ["--bogus"]),
    ("clone", "clone 999 --lr 1e-3", USAGE, ["no run with id 999"]),
    ("clone", "clone {ddpm} --lr abc", USAGE, ["--lr expects a number, got 'abc'"]),
    ("clone", "clone {ddpm} --lr -1", USAGE, ["--lr must be > 0, got -1"]),
    ("clone", "clone {ddpm} --bogus 1", USAGE, ["--bogus"]),
    ("rm", "rm 999 --yes", USAGE, ["no run with id 999"]),
    ("rm", "rm {ddpm}", USAGE, ["--yes"]),
    ("rm", "rm nine --yes", USAGE, ["run_ids", "invalid int value", "nine"]),
    ("export", "export 999", USAGE, ["no run with id 999"]),
    ("export", "export {ddpm} --format xml", USAGE, ["--format", "xml", "csv"]),
    ("export", "export {ddpm} -o {file}/m.csv", USAGE, ["-o {file}/m.csv", "cannot write", "existing folder"]),
    ("export", "export {ddpm} -o {dir}", USAGE, ["-o {dir}", "Is a directory"]),
    ("exec", "exec", USAGE, ["exec needs a command after --"]),
    ("exec", "exec --cwd {dir}/nope -- true", USAGE, ["--cwd", "{dir}/nope is not a folder"]),
    ("exec", "exec --cwd {file} -- true", USAGE, ["--cwd", "{file} is not a folder"]),
    ("sample", "sample 999", USAGE, ["no run with id 999"]),
    ("sample", "sample {ddpm} -n 0", USAGE, ["-n/--num", "must be >= 1", "0"]),
    ("sample", "sample {ddpm} -n abc", USAGE, ["-n/--num", "expected an integer", "abc"]),
    ("sample", "sample {ddpm} --batch 0", USAGE, ["--batch", "must be >= 1"]),
    ("sample", "sample {ddpm} --steps 0", USAGE, ["--steps", "must be >= 1"]),
    ("sample", "sample {ddpm} --eta -1", USAGE, ["--eta", "must be >= 0"]),
    ("sample", "sample {ddpm} --device gpu7", USAGE, ["--device", "cuda:N", "gpu7"]),
    ("sample", "sample {ddpm} --bogus", USAGE, ["--bogus"]),
    ("sample", "sample {ddpm} -n 1 --labels 3", USAGE, ["--labels", "unconditional"]),
    ("sample", "sample {ddpm} -n 1 --checkpoint 77", USAGE, ["run {ddpm} has no checkpoint at step 77", "saved steps: 2"]),
    ("sample", "sample {ddpm} -n 1 --checkpoint {dir}/nope.pt", USAGE, ["--checkpoint {dir}/nope.pt", "checkpoint file"]),
    ("sample", "sample {ddpm} -n 1 --checkpoint {garbage}", USAGE, ["checkpoint {garbage} could not be loaded",
                                                                    "not a tuigen checkpoint"]),
    ("sample", "sample {ddpm} -n 1 --checkpoint {gan_ckpt}", USAGE, ["checkpoint {gan_ckpt} does not match the run's config",
                                                                     "not a diffusion checkpoint"]),
    ("sample", "sample {gan} -n 1 --checkpoint {ddpm_ckpt}", USAGE, ["checkpoint {ddpm_ckpt} does not match the run's config",
                                                                     "not a GAN checkpoint"]),
    ("sample", "sample {edited} -n 1", USAGE, ["checkpoint {ddpm_ckpt} does not match the run's config",
                                               "image_size: 16 in the config, 8 in the checkpoint",
                                               "channels: 16 in the config, 8 in the checkpoint"]),
    ("sample", "sample {edited_gan} -n 1", USAGE, ["checkpoint {gan_ckpt} does not match the run's config",
                                                   "width: 8 in the config, 4 in the checkpoint"]),
    ("sample", "sample {gan} -n 1 --truncation 0.5", USAGE, ["truncation", "stylegan"]),
    ("grid", "grid 999", USAGE, ["no run with id 999"]),
    ("grid", "grid {ddpm} --columns 0", USAGE, ["--columns", "must be >= 1"]),
    ("grid", "grid {ddpm}", USAGE, ["run {ddpm} is not class-conditional"]),
    ("grid", "grid {gan}", USAGE, ["run {gan} is a 'dcgan' run", "ddpm, cond-ddpm"]),
    ("grid", "grid {edited}", USAGE, ["does not match the run's config", "image_size"]),
    ("strip", "strip 999", USAGE, ["no run with id 999"]),
    ("strip", "strip {ddpm} --timesteps 500", USAGE, ["--timesteps 500", "expected 0..9"]),
    ("strip", "strip {ddpm} --timesteps a,b", USAGE, ["--timesteps", "comma-separated numbers", "a,b"]),
    ("strip", "strip {ddpm} --label 3", USAGE, ["--label 3", "unconditional"]),
    ("strip", "strip {ddpm} --label x", USAGE, ["--label", "invalid int value", "x"]),
    ("eta-grid", "eta-grid 999", USAGE, ["no run with id 999"]),
    ("eta-grid", "eta-grid {ddpm} --steps 0", USAGE, ["--steps", "must be >= 1"]),
    ("eta-grid", "eta-grid {ddpm} --etas -1", USAGE, ["--etas", ">= 0", "-1"]),
    ("eta-grid", "eta-grid {ddpm} --noise {dir}/nope.pt", USAGE, ["--noise {dir}/nope.pt", "no such file"]),
    ("eta-grid", "eta-grid {ddpm} --noise {garbage}", USAGE, ["--noise {garbage}", "not a saved tensor"]),
    ("interp", "interp 999", USAGE, ["no run with id 999"]),
    ("interp", "interp {ddpm} --alphas x", USAGE, ["--alphas", "comma-separated numbers", "'x'"]),
    ("interp", "interp {ddpm} --steps -2", USAGE, ["--steps", "must be >= 1", "-2"]),
    ("interp", "interp {ddpm} --noise {dir}/nope.pt", USAGE, ["--noise {dir}/nope.pt", "no such file"]),
    ("fuse", "fuse {ddpm}", USAGE, ["fuse needs --a and --b, or --pairs FOLDER"]),
    ("fuse", "fuse 999 --a x.png --b y.png", USAGE, ["no run with id 999"]),
    ("fuse", "fuse {ddpm} --a {dir}/a.png --b {dir}/b.png", USAGE, ["{dir}/a.png", "not a readable image"]),
    ("fuse", "fuse {ddpm} --a {dir}/a.png --b {dir}/b.png --t 9999", USAGE, ["--t must be in 0..9, got 9999"]),
    ("fuse", "fuse {ddpm} --a {dir}/a.png --b {dir}/b.png --lam 3", USAGE, ["--lam must be between 0 and 1"]),
    ("fuse", "fuse {ddpm} --pairs {file}/imgs", USAGE, ["--pairs {file}/imgs is not a folder"]),
    ("fuse", "fuse {ddpm} --pairs {dir} -n 0", USAGE, ["-n/--num", "must be >= 1"]),
    ("fid", "fid 999", USAGE, ["no run with id 999"]),
    ("fid", "fid {ddpm} -n 1", USAGE, ["-n/--num", "must be >= 2", "1"]),
    ("fid", "fid {ddpm} --batch 0", USAGE, ["--batch", "must be >= 1"]),
    ("fid", "fid {ddpm} -n abc", USAGE, ["-n/--num", "expected an integer", "abc"]),
    ("fid", "fid a b c", USAGE, ["fid takes a run id, or two folders"]),
    ("fid", "fid {dir}/nope {dir}", USAGE, ["{dir}/nope is not a folder"]),
    ("fid", "fid {dir} {file}/imgs", USAGE, ["{file}/imgs is not a folder"]),
    ("fid", "fid {dir} {one}", USAGE, ["no images in {dir}"]),
    ("fid", "fid {edited} -n 2 --steps 1", USAGE, ["does not match the run's config", "image_size"]),
    ("fid", "fid {nodata} -n 2 --steps 1", USAGE, ["--dataset", "{dir}/gone", "does not exist"]),
    ("accuracy", "accuracy 999", USAGE, ["no run with id 999"]),
    ("accuracy", "accuracy {ddpm} --per_class 0", USAGE, ["--per_class", "must be >= 1"]),
    ("accuracy", "accuracy {ddpm} --labels nope", USAGE, ["--labels", "nope", "new_test"]),
    ("accuracy", "accuracy {ddpm}", USAGE, ["run {ddpm} is unconditional", "cond-ddpm"]),
    ("accuracy", "accuracy {gan}", USAGE, ["run {gan} is unconditional", "cond-ddpm or cgan"]),
    ("board", "board --metric fdi", USAGE, ["--metric fdi", "no scores by that name", "fid"]),
    ("board", "board --kind nope", USAGE, ["--kind", "nope", "ddpm"]),
    ("board", "board --bogus", USAGE, ["--bogus"]),
    ("dann-table", "dann-table --rule nope", USAGE, ["--rule", "nope", "best-source-val"]),
    ("dann-table", "dann-table --stat max", USAGE, ["unrecognized arguments: --stat"]),  # max peeked at target labels
    ("dann-table", "dann-table --bogus", USAGE, ["--bogus"]),
    ("demo", "demo --bogus", USAGE, ["--bogus"]),
    ("demo", "--db {dir} demo", FAILURE, ["{dir}", "is a folder"]),
    ("tuigen", "nope", USAGE, ["invalid choice", "nope", "sample"]),
    ("run", "run", USAGE, ["KIND", "required"]),
    ("run", "run nope", USAGE, ["invalid choice", "nope", "ddpm"]),
    ("run ddpm", "run ddpm --lr abc", USAGE, ["--lr expects a number, got 'abc'"]),
    ("run ddpm", "run ddpm --lr -1", USAGE, ["--lr must be > 0, got -1"]),
    ("run ddpm", "run ddpm --dim_mults a,b", USAGE, ["--dim_mults expects a comma-separated list of int"]),
    ("run ddpm", "run ddpm --dataset folder:{file}/imgs", USAGE, ["--dataset", "{file}/imgs does not exist"]),
    ("run ddpm", "run ddpm --dataset folder:{file}", USAGE, ["--dataset", "{file} is not a directory"]),
    ("run ddpm", "run ddpm --dataset folder:{dir}", USAGE, ["--dataset", "{dir} holds no image files"]),
    ("run ddpm", "run ddpm --gpus 64", USAGE, ["--gpus 64: this machine has", "--executor slurm", "--processes"]),
    ("run ddpm", "run ddpm --processes 0", USAGE, ["--processes", "must be >= 1, got 0"]),
    ("run ddpm", "run ddpm --gpus 2 --processes 2", USAGE, ["--gpus and --processes exclude each other"]),
    ("run dcgan", "run dcgan --processes 2", USAGE, ["--processes 2: kind 'dcgan' trains on one process",
                                                     "ddpm, cond-ddpm, classifier"]),
    ("run ddpm", "run ddpm --executor slurm --gpus 0", USAGE, ["--gpus", "must be >= 1, got 0"]),
    ("run ddpm", "run ddpm --executor slurm --signal-before 0", USAGE, ["--signal-before", "must be >= 1, got 0"]),
    ("run ddpm", "run ddpm --gpus two", USAGE, ["--gpus", "expected an integer", "two"]),
    ("run ddpm", "run ddpm --executor pbs", USAGE, ["--executor", "pbs", "slurm"]),
    ("run ddpm", "run ddpm --partition debug", USAGE, ["--partition needs --executor slurm"]),
    ("run ddpm", "run ddpm --time 00:10:00", USAGE, ["--time needs --executor slurm"]),
    ("run exec", "run exec", USAGE, ["--command", "a command is required"]),
    # issue 11: configuration that cannot work is refused at the command
    ("ls", "--db :memory: ls", USAGE, ["--db", "in-memory SQLite store cannot work", "a file"]),
    ("ls", "--db sqlite:// ls", USAGE, ["--db", "in-memory SQLite store cannot work"]),
    ("run classifier", "run classifier --train_num_steps 1e19", USAGE,
     ["--train_num_steps must be <= 2147483647", "what the store can hold"]),
    ("run ddpm", "run ddpm --lr inf", USAGE, ["--lr must be"]),
    ("run ddpm", "run ddpm --executor slurm --time 12h", USAGE, ["--time '12h'", "Slurm's formats", "HH:MM:SS"]),
    ("run ddpm", "run ddpm --executor slurm --partition 'gpu;rm'", USAGE, ["--partition 'gpu;rm'", "a partition name"]),
    ("run ddpm", "run ddpm --executor slurm --sbatch-arg=mem=16G", USAGE, ["--sbatch-arg 'mem=16G'", "one sbatch option"]),
    ("resume", "resume 999", USAGE, ["no run with id 999"]),
    ("run exec", "run exec --command true --cwd {dir}/nope", USAGE, ["--cwd", "is not a folder"]),
    ("ls", "ls --study nope", USAGE, ["no study named 'nope'"]),
    ("kill", "kill --sweep 999", USAGE, ["--sweep 999", "no runs belong"]),
    ("board", "board --sweep 999", USAGE, ["--sweep 999", "no runs belong"]),
    ("board", "board --study nope", USAGE, ["no study named 'nope'"]),
    ("sweep", "sweep ddpm --lr '1e-3|-1'", USAGE, ["--lr must be > 0", "-1"]),
    ("sweep", "sweep ddpm --channels '8|abc'", USAGE, ["--channels expects an integer", "'abc'"]),
    ("sweep", "sweep ddpm --lr '1e-3|5e-4' --random 5", USAGE, ["--random 5", "only 2 combination"]),
    ("sweep", "sweep ddpm --lr '1e-3|5e-4' --max-parallel 0", USAGE, ["--max-parallel", "must be >= 1"]),
    ("sweep", "sweep nokind --lr 1", USAGE, ["nokind", "invalid choice"]),
    ("tune", "tune", USAGE, ["tune needs a KIND", "--resume"]),
    ("tune", "tune ddpm --metric fid --lr 1e-4:1e-2", USAGE, ["--trials", "required"]),
    ("tune", "tune ddpm --trials 2 --metric fid", USAGE, ["at least one knob to search"]),
    ("tune", "tune ddpm --trials 2 --metric fid --lr log:-1:1", USAGE, ["--lr must be > 0", "-1"]),
    ("tune", "tune ddpm --trials 2 --metric fid --lr 1e-2:1e-4", USAGE, ["--lr 1e-2:1e-4", "LOW < HIGH"]),
    ("tune", "tune ddpm --trials 2 --metric fid --channels '8|x'", USAGE, ["--channels expects an integer", "'x'"]),
    ("tune", "tune ddpm --trials 2 --metric val_thing --lr 1e-4:1e-2", USAGE, ["--metric val_thing", "--direction"]),
    ("tune", "tune --resume nope", USAGE, ["no study named 'nope'"]),
    ("report", "report", USAGE, ["report takes one of", "--sweep"]),
    ("report", "report 999", USAGE, ["no run with id 999"]),
    ("report", "report --sweep 999", USAGE, ["--sweep 999", "no runs belong"]),
    ("report", "report --study nope", USAGE, ["no study named 'nope'"]),
    ("report", "report --board --metric nope", USAGE, ["--board", "no nope scores"]),
]


def _number_knob(kind):
    """A bounded int/float option of the kind (--lr when it has one): a wrong type and a value
    below its bound must both be rejected naming it."""
    ks = [k for k in schema.knobs(kind.config) if schema._base(k.type) in (int, float) and
          (k.ge is not None or k.gt is not None)]
    return next((k for k in ks if k.name == "lr"), ks[0] if ks else None)


def _kind_cases():
    """Per kind, from its schema: a wrong type, out of range, an unknown flag, a missing folder."""
    out = []
    for name, kind in KINDS.items():
        verb = f"run {name}"
        out.append((verb, f"run {name} --no_such_option 1", USAGE, ["--no_such_option"]))
        k = _number_knob(kind)
        if k is not None:
            bound = k.ge if k.ge is not None else k.gt
            below = bound - 1 if schema._base(k.type) is int else -1.0 if bound >= 0 else bound - 1
            out.append((verb, f"run {name} {k.flag} abc", USAGE, [f"{k.flag} expects", "'abc'"]))
            out.append((verb, f"run {name} {k.flag} {below:g}", USAGE, [f"{k.flag} must be"]))
        if any(k.name == "dataset" for k in schema.knobs(kind.config)):
            out.append((verb, f"run {name} --dataset folder:{{dir}}/nope", USAGE,
                        ["--dataset", "{dir}/nope does not exist"]))
    return out


ALL = CASES + _kind_cases()


def parser_verbs() -> set[str]:
    """Every subcommand of the real parser, with `run KIND` for each kind."""
    def subparsers(p):
        return next(a for a in p._actions if isinstance(a, argparse._SubParsersAction)).choices

    verbs = set(subparsers(build_parser()))
    verbs |= {f"run {kind}" for kind in subparsers(subparsers(build_parser())["run"])}
    return verbs


def test_every_verb_has_cases():
    covered = {verb for verb, *_ in ALL}
    missing = parser_verbs() - covered
    assert not missing, f"verbs without bad-input cases in tests/test_bad_input.py: {sorted(missing)}"


# -- shared fixtures: a store with two tiny trained runs, and some files -----------------------
TINY_DDPM = ("run ddpm --dataset digits --image_size 8 --channels 8 --dim_mults 1 --num_res_blocks 1 "
             "--attn_resolutions '' --timesteps 10 --batch_size 4 --train_num_steps 2 --sample_every 2 "
             "--num_samples 1 --sample_steps 1 --checkpoint_every 2 --json")
TINY_DCGAN = ("run dcgan --dataset digits --image_size 8 --g_width 4 --d_width 4 --batch_size 4 "
              "--train_num_steps 2 --sample_every 2 --num_samples 4 --checkpoint_every 2 --json")


def _call(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tuigen.store import Store

    root = tmp_path_factory.mktemp("bad_input")
    db = f"sqlite:///{root / 'runs.db'}"
    old = os.environ.get("TUIGEN_SLOTS")
    os.environ["TUIGEN_SLOTS"] = "2"  # both runs train at once
    try:
        ids = {}
        for key, line in (("ddpm", TINY_DDPM), ("gan", TINY_DCGAN)):
            code, out, err = _call("--db", db, *shlex.split(line))
            assert code == 0, err
            ids[key] = json.loads(out)["id"]
        store = Store(db)
        wait_for(lambda: all(store.get_run(i).status in ("completed", "failed") for i in ids.values()),
                 timeout=120, what="the tiny runs")
        for i in ids.values():
            assert store.get_run(i).status == "completed", store.get_run(i).error
        w = {"db": db, **{k: str(v) for k, v in ids.items()}}
        for key in ("ddpm", "gan"):
            w[f"{key}_ckpt"] = store.artifacts(ids[key], kind="checkpoint")[-1].path
        # Runs whose stored config disagrees with the checkpoint they list (a hand-edited config,
        # or a checkpoint swapped in from another run).
        w["edited"] = _copy_run(store, ids["ddpm"], w["ddpm_ckpt"], image_size=16, channels=16)
        w["edited_gan"] = _copy_run(store, ids["gan"], w["gan_ckpt"], g_width=8)
        (root / "empty").mkdir()
        w["nodata"] = _copy_run(store, ids["ddpm"], w["ddpm_ckpt"], dataset=f"folder:{root / 'empty' / 'gone'}")
        store.close()
    finally:
        if old is None:
            os.environ.pop("TUIGEN_SLOTS", None)
        else:
            os.environ["TUIGEN_SLOTS"] = old
    return {**w, **_files(root)}


def _copy_run(store, run_id: int, checkpoint: str, **changes) -> str:
    src = store.get_run(run_id)
    config = {**json.loads(src.config), **changes}
    run = store.create_run(src.kind, json.dumps(config), dataset=config.get("dataset", ""), status="completed")
    store.add_artifact(run.id, "checkpoint", checkpoint, step=2)
    return str(run.id)


def _files(root: Path) -> dict[str, str]:
    from PIL import Image

    (root / "a_file").write_text("not a folder\n")
    (root / "garbage.pt").write_bytes(b"this is not a checkpoint")
    (root / "one").mkdir()
    Image.new("RGB", (8, 8)).save(root / "one" / "x.png")
    return {"file": str(root / "a_file"), "garbage": str(root / "garbage.pt"), "dir": str(root / "empty"),
            "one": str(root / "one")}


def _fill(template: str, world: dict) -> str:
    return template.format(**world)


@pytest.mark.parametrize("verb, argv, code, needles", [pytest.param(*c, id=c[1]) for c in ALL])
def test_bad_input_names_the_problem(cli, world, verb, argv, code, needles):
    args = shlex.split(_fill(argv, world))
    if args[0] != "--db":
        args = ["--db", world["db"], *args]
    got, out, err = cli(*args)
    assert got == code, (got, err)
    for needle in needles:
        assert _fill(needle, world) in err, (needle, err)
    assert "Traceback" not in err + out
    assert err.rstrip().splitlines()[-1].startswith(("tuigen: error:", "tuigen ")), err


def test_an_unreadable_dataset_folder_is_rejected_before_the_run_starts(cli, store, tmp_path):
    locked = tmp_path / "locked"
    (locked / "cats").mkdir(parents=True)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads through chmod 000
            pytest.skip("running as root: chmod 000 does not stop reads (paths through a regular file "
                        "cover unreadable folders above)")
        code, _, err = cli("run", "classifier", "--dataset", f"folder:{locked}")
    finally:
        locked.chmod(0o755)
    assert code == USAGE and f"folder:{locked} cannot be read" in err
    assert store.list_runs() == []


def test_a_mismatched_checkpoint_exits_cleanly_from_the_real_command(world):
    """The installed entry point, not just main(): exit 2, one line, no torch traceback."""
    proc = subprocess.run([sys.executable, "-m", "tuigen", "--db", world["db"], "sample", world["edited"], "-n", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == USAGE
    assert proc.stderr.strip().splitlines() == [
        f"tuigen: error: checkpoint {world['ddpm_ckpt']} does not match the run's config (image_size: 16 in the "
        f"config, 8 in the checkpoint; channels: 16 in the config, 8 in the checkpoint); pass a checkpoint saved "
        f"by run {world['edited']}, or clone the run that saved it"]


# -- issue 11: hostile text, odd output lines, environment values -------------------------------
@pytest.mark.parametrize("flag, value", [("--partition", "gpu\n#SBATCH --uid=0"), ("--time", "1:00:00\nrm -rf ~"),
                                         ("--sbatch-arg", "--mem=1G\necho pwned")])
def test_a_newline_never_reaches_an_sbatch_script(cli, store, flag, value):
    """Found: a newline in --partition/--time/--sbatch-arg made the rest a shell command in slurm.sbatch."""
    code, _, err = cli("run", "exec", "--command", "true", "--executor", "slurm", f"{flag}={value}")
    assert code == USAGE and flag in err and "\\n" not in err and "\u240a" in err, err  # the newline, made visible
    assert len(err.strip().splitlines()) == 1
    assert store.list_runs() == []  # nothing queued


@pytest.mark.parametrize("name, value, needle", [
    ("TUIGEN_BUSY_TIMEOUT", "inf", "TUIGEN_BUSY_TIMEOUT must be a number of seconds from 0 to 86400, got 'inf'"),
    ("TUIGEN_BUSY_TIMEOUT", "abc", "TUIGEN_BUSY_TIMEOUT must be a number of seconds"),
    ("TUIGEN_SLOTS", "-1", "TUIGEN_SLOTS must be a whole number"),
    ("TUIGEN_HEARTBEAT_TIMEOUT", "nan", "TUIGEN_HEARTBEAT_TIMEOUT must be a number of seconds"),
    ("TUIGEN_THREADS", "two", "TUIGEN_THREADS must be a whole number"),
    ("TUIGEN_FAKE_GPUS", "many", "TUIGEN_FAKE_GPUS must be a whole number"),
    ("TUIGEN_DDP_TIMEOUT", "-5", "TUIGEN_DDP_TIMEOUT must be a number of seconds"),
])
def test_environment_values_that_cannot_work_are_refused(cli, store, monkeypatch, name, value, needle):
    monkeypatch.setenv(name, value)
    code, out, err = cli("exec", "--", "true")
    assert code == USAGE and needle in err and "Traceback" not in err
    monkeypatch.delenv(name)
    assert store.list_runs() == []


HOSTILE = ["[/]", "[bold]x[/bold", "\x1b]52;c;aGFja2Vk\x07copied", "two\nlines\x1b[2J"]


@pytest.mark.parametrize("name", HOSTILE)
def test_names_and_commands_are_shown_as_text(cli, store, name):
    """Found: `exec --name '[/]'` made ls and show die with MarkupError; an OSC 52 sequence in a
    name reached the terminal raw (anyone naming a run in a shared store could set your clipboard)."""
    code, out, err = cli("exec", "--name", name, "--json", "--", "echo", "[/bold]", "\x1b[31m")
    assert code == 0, err
    run_id = json.loads(out)["id"]
    wait_for(lambda: store.get_run(run_id).status == "completed", what="the run")
    for args in (("ls",), ("show", str(run_id)), ("ui", "--once")):
        code, out, err = cli(*args)
        assert code == 0 and "Traceback" not in err, (args, err)
        assert "\x1b" not in out and "\x07" not in out, (args, out)  # no escape reaches the terminal
    code, out, _ = cli("show", str(run_id))
    assert "[/bold]" in out  # shown literally, not eaten as markup
    if "\x1b" in name:
        assert "\u241b" in out  # ESC made visible as its control picture
    code, out, _ = cli("ls", "--json")
    assert json.loads(out)[0]["name"] == name  # JSON keeps the exact text


ODD = ("import sys\n"
       "print('step=1 loss=1.0')\n"
       "print('step=nan loss=2.0')\n"
       "print('step=1e19 loss=3.0')\n"
       "print('step=2 loss=inf')\n"
       "print('step=3 loss=0.5')\n")


def test_odd_output_lines_never_fail_a_run(cli, store):
    """Found: step=nan failed the run; step=1e19 blocked every later point; loss=inf made --json
    print Infinity, which is not JSON."""
    code, out, err = cli("exec", "--json", "--", sys.executable, "-c", ODD)
    assert code == 0, err
    run_id = json.loads(out)["id"]
    run = wait_for(lambda: (r := store.get_run(run_id)).status in ("completed", "failed") and r, what="the run")
    assert run.status == "completed", run.error
    assert [(p.step, p.value) for p in store.metrics(run_id, "loss")] == [(1, 1.0), (2, float("inf")), (3, 0.5)]
    warnings = [e.message for e in store.events(run_id) if e.level == "warning"]
    assert len(warnings) == 1 and "step" in warnings[0] and "skipped" in warnings[0]
    assert "step=nan loss=2.0" in (Path(run.run_dir) / "output.log").read_text()  # the line stays in the log
    for args in (("ls", "--json"), ("show", str(run_id), "--json"), ("export", str(run_id), "--format", "json")):
        code, out, err = cli(*args)
        assert code == 0, err
        text = out.strip()
        assert "Infinity" not in text and "NaN" not in text
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{args}: {c} is not JSON"))
    code, out, _ = cli("export", str(run_id), "--format", "json")
    assert [p["value"] for p in json.loads(out)["points"]] == [1.0, None, 0.5]  # inf is null
