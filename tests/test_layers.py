"""The layers as a checked contract (docs/architecture.md): a design intention becomes a failing test.

Read from the source (tests/import_graph.py), counting function-level imports too:
- no two tuigen files import each other in a circle, directly or through others;
- every import points down the layers (LAYERS below), never up;
- tui never reaches torch, models, the trained-model floor or a training loop, even through
  another module; models and data never reach store, runner, cli or tui; experiments never
  reach generate, cli, tui or reports; store reaches nothing above it.
And, by importing for real: what the CLI and the TUI import never pulls torch, and the store
and runner never pull textual.
"""
from __future__ import annotations

import pkgutil

import pytest

import import_graph as ig
from conftest import python

# Bottom to top; a package may import its own layer's packages only where SAME_LAYER says so.
LAYERS = [
    {"tuigen.errors"},
    {"tuigen.files", "tuigen.display", "tuigen.config", "tuigen.settings"},
    {"tuigen.store", "tuigen.models", "tuigen.data", "tuigen.viz"},
    {"tuigen.trained"},
    {"tuigen.metrics"},
    {"tuigen.experiments"},
    {"tuigen.runner", "tuigen.reports", "tuigen.generate"},
    {"tuigen.cli", "tuigen.tui", "tuigen.tracking", "tuigen"},
    {"tuigen.__main__"},
]
SAME_LAYER = {("tuigen.cli", "tuigen.tui")}  # `tuigen` with no verb opens the TUI
TRAINING = {"tuigen.experiments.diffusion_train", "tuigen.experiments.gan_train", "tuigen.experiments.dann_train",
            "tuigen.experiments.classifier_train", "tuigen.experiments.common"}
TORCH_FREE_VOCABULARY = {"tuigen.models.choices"}  # names the config schemas validate against

GRAPH = ig.graph()


def part(module: str) -> str:
    """The layer unit a module belongs to: tuigen.store.engine -> tuigen.store."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def layer(unit: str) -> int:
    return next(i for i, units in enumerate(LAYERS) if unit in units)


def test_every_package_has_a_layer():
    assert {part(m) for m in GRAPH} <= set().union(*LAYERS)


def test_no_import_circles():
    assert ig.cycles(GRAPH) == []


def test_cycle_finder_finds_a_circle():
    """The check above can fail: a two-file circle like today's cli/main <-> cli/commands is found."""
    g = {"tuigen.cli.main": {"tuigen.cli.commands"}, "tuigen.cli.commands": {"tuigen.cli.main"}, "tuigen.x": set()}
    assert ig.cycles(g) == [["tuigen.cli.commands", "tuigen.cli.main"]]


def test_imports_point_down():
    wrong = []
    for module, deps in GRAPH.items():
        here = part(module)
        for dep in deps:
            if dep not in GRAPH or part(dep) == here or here == "tuigen":
                continue
            there = part(dep)
            if layer(there) > layer(here) or (layer(there) == layer(here) and (here, there) not in SAME_LAYER):
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


def reaches(module_prefix: str) -> set[str]:
    out: set[str] = set()
    for m in GRAPH:
        if m == module_prefix or m.startswith(module_prefix + "."):
            out |= ig.reach(GRAPH, m)
    return out


def test_tui_never_reaches_torch_models_or_training():
    got = reaches("tuigen.tui")
    bad = sorted(m for m in got if m in ("torch", "torchvision") or m in TRAINING
                 or (m.startswith(("tuigen.models", "tuigen.trained", "tuigen.metrics", "tuigen.generate"))
                     and m not in TORCH_FREE_VOCABULARY))
    assert bad == []


@pytest.mark.parametrize("low", ["tuigen.models", "tuigen.data"])
def test_models_and_data_know_nothing_above(low):
    bad = sorted(m for m in reaches(low) if m.startswith(("tuigen.store", "tuigen.runner", "tuigen.cli", "tuigen.tui")))
    assert bad == []


def test_experiments_never_reach_the_verbs():
    bad = sorted(m for m in reaches("tuigen.experiments")
                 if m.startswith(("tuigen.generate", "tuigen.cli", "tuigen.tui", "tuigen.reports")))
    assert bad == []


def test_store_reaches_nothing_above_it():
    bad = sorted(m for m in reaches("tuigen.store") if m.startswith("tuigen.") and part(m) != "tuigen.store"
                 and layer(part(m)) >= layer("tuigen.store"))
    assert bad == []


def test_the_checker_sees_function_level_imports():
    """reach() counts imports inside functions: the worker imports torch only in one, yet reaches it."""
    assert "torch" in ig.reach(GRAPH, "tuigen.runner.worker")
    assert "tuigen.experiments.classifier_train" not in ig.reach(GRAPH, "tuigen.experiments.classifier")


# -- imported for real ---------------------------------------------------------------------
TORCH_FREE = ["tuigen", "tuigen.cli", "tuigen.cli.commands", "tuigen.store", "tuigen.config",
              "tuigen.experiments", "tuigen.data", "tuigen.data.catalog", "tuigen.runner.scheduler",
              "tuigen.runner.reaper", "tuigen.runner.recorder", "tuigen.runner.worker", "tuigen.tracking",
              "tuigen.viz", "tuigen.experiments.dann", "tuigen.experiments.gan", "tuigen.reports", "tuigen.reports.leaderboard",
              "tuigen.tui.app", "tuigen.tui.screens.run_list", "tuigen.tui.screens.run_detail", "tuigen.tui.screens.new_run",
              "tuigen.tui.screens.leaderboard", "tuigen.tui.screens.compare", "tuigen.tui.screens.system",
              "tuigen.tui.screens.help", "tuigen.trained.provenance"]


@pytest.mark.parametrize("module", TORCH_FREE)
def test_module_does_not_import_torch(module):
    banned = ("torch",) if module.startswith("tuigen.tui") else ("torch", "textual")
    res = python(f"import sys, {module}\nbad = [m for m in {banned!r} if m in sys.modules]\n"
                 "print(','.join(bad))")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"{module} imports {res.stdout.strip()}"


def _modules(package: str) -> list[str]:
    pkg = __import__(package, fromlist=["_"])
    return [package] + [f"{package}.{m.name}" for m in pkgutil.walk_packages(pkg.__path__)]


def test_store_and_runner_never_import_the_tui():
    mods = _modules("tuigen.store") + [m for m in _modules("tuigen.runner")]
    code = ("import sys, importlib\n"
            f"for m in {mods!r}:\n    importlib.import_module(m)\n"
            "print(','.join(m for m in sys.modules if m.startswith(('textual', 'tuigen.tui'))))")
    res = python(code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


def test_cli_help_is_fast_and_needs_no_torch():
    res = python("import sys, time\nt = time.perf_counter()\nfrom tuigen.cli import main\n"
                 "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
                 "print('TORCH' if 'torch' in sys.modules else '', round(time.perf_counter() - t, 3))")
    assert "TORCH" not in res.stdout and "usage: tuigen" in res.stdout


def test_contexts_meet_the_run_protocol(tmp_path):
    """Every context a kind's run(cfg, ctx) can be given has what the protocol promises."""
    from tuigen.experiments.base import RunContext, TorchRunContext
    from tuigen.runner.context import Context, TorchContext
    from tuigen.runner.ddp_context import DistributedContext, FollowerContext

    def members(proto) -> set[str]:
        names = set()
        for cls in proto.__mro__:
            if cls.__name__ in ("Protocol", "Generic", "object"):
                continue
            names |= {n for n in vars(cls) if not n.startswith("_")} | set(getattr(cls, "__annotations__", {}))
        return names

    for cls, proto in ((Context, RunContext), (TorchContext, TorchRunContext), (DistributedContext, TorchRunContext),
                       (FollowerContext, TorchRunContext)):
        instance_attrs = {"run_id", "run_dir", "step", "device"}  # set in __init__
        missing = sorted(n for n in members(proto) if not hasattr(cls, n) and n not in instance_attrs)
        assert missing == [], f"{cls.__name__} lacks {missing}"


def test_trained_models_meet_the_sampling_protocol():
    import torch

    from tuigen.models.diffusion import GaussianDiffusion
    from tuigen.models.unet import UNet
    from tuigen.trained.conditioning import Conditioning
    from tuigen.trained.diffusion import Trained
    from tuigen.trained.gan import TrainedGAN
    from tuigen.trained.protocol import TrainedModel

    unet = UNet(image_size=8, in_channels=1, channels=8, dim_mults=(1,), num_res_blocks=1, attn_resolutions=())
    none = Conditioning("none", 0, [])
    diffusion = Trained(unet, GaussianDiffusion(10), none, 0, "ema", (1, 8, 8))
    gan = TrainedGAN(torch.nn.Identity(), "dcgan", none, (1, 8, 8), 0, "raw", 4, torch.device("cpu"))
    assert isinstance(diffusion, TrainedModel) and isinstance(gan, TrainedModel)
    assert not diffusion.is_gan and gan.is_gan
