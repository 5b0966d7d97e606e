"""DDIM's Table 1 at small scale: FID of 2,048 samples of the README's MNIST recipe model for
DDIM with S = 10, 20, 50, 100 steps at eta = 0 and eta = 1 (Song et al.: eta 0 degrades least
as S falls), and with --ddpm the 1,000-step DDPM chain (about 6 CPU hours for 2,048 samples).

    nice -n 19 .venv/bin/python bench/ddim_table.py [--db bench-out/ddim.db] [--ddpm]

Resumable: the recipe run is trained once (found in the store by its name, resumed if it was
stopped) and each cell is a stored FID score whose provenance names N, the sampler, S and eta,
so a rerun computes only the missing cells, then prints the table. FID is the default
definition (pytorch-fid's: its resize and x/127.5 - 1 scaling, the mapped TF weights) against
the 5,000 MNIST digits; the first cell also checks the default eigh distance against scipy's
sqrtm on these real 2,048-sample features.
"""
from __future__ import annotations

import argparse

from tables_common import open_store, run_named, stored_score, tuigen

RECIPE = ["ddpm", "--dataset", "mnist", "--image_size", "28", "--channels", "32", "--dim_mults", "1,2,4",
          "--num_res_blocks", "1", "--attn_resolutions", "7", "--batch_size", "64", "--lr", "5e-4",
          "--ema_decay", "0.998", "--ema_every", "1", "--train_num_steps", "3500", "--sample_every", "500",
          "--checkpoint_every", "500", "--precision", "bf16", "--num_samples", "64"]
N = 2048
STEPS = (10, 20, 50, 100)
ETAS = (0.0, 1.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="bench-out/ddim.db")
    p.add_argument("--ddpm", action="store_true", help="also the 1,000-step DDPM chain (slow on a CPU)")
    args = p.parse_args()
    store = open_store(args.db)
    run_id = run_named(store, args.db, "mnist-recipe", RECIPE)
    step = store.get_run(run_id).step
    cells = [("ddim", s, eta) for s in STEPS for eta in ETAS] + ([("ddpm", 1000, 1.0)] if args.ddpm else [])
    for sampler, steps, eta in cells:
        if stored_score(store, run_id, "fid", step, n=N, sampler=sampler, steps=steps, eta=eta) is None:
            tuigen(args.db, "fid", run_id, "-n", N, "--sampler", sampler, "--steps", steps, "--eta", eta)
    check_eigh(store, run_id, step)
    print(f"\nFID of {N} samples vs the 5,000 MNIST digits (run {run_id}, checkpoint {step}, EMA weights)")
    print("| sampler | S | eta = 0 | eta = 1 |\n|---|---|---|---|")
    for s in STEPS:
        row = [stored_score(store, run_id, "fid", step, n=N, sampler="ddim", steps=s, eta=eta) for eta in ETAS]
        print(f"| DDIM | {s} | " + " | ".join(f"{c['value']:.2f}" if c else "-" for c in row) + " |")
    if args.ddpm and (c := stored_score(store, run_id, "fid", step, n=N, sampler="ddpm", steps=1000, eta=1.0)):
        print(f"| DDPM | 1000 | | {c['value']:.2f} |")


def check_eigh(store, run_id: int, step: int) -> None:
    """The default eigh distance vs scipy's sqrtm on real, full-rank features: the two halves of
    the reference's 5,000 cached Inception features (2,500 each)."""
    import time

    from tuigen.metrics import stats_cache
    from tuigen.metrics.fid import fid_from_features

    score = stored_score(store, run_id, "fid", step, n=N, sampler="ddim", steps=STEPS[0], eta=ETAS[0])
    entry = score and stats_cache.load_features(score["provenance"]["reference"], score["provenance"]["extractor"])
    if not entry:
        return
    feats = entry["features"]
    half = len(feats) // 2
    values, times = {}, {}
    for method in ("eigh", "pytorch-fid"):
        t0 = time.perf_counter()
        values[method] = fid_from_features(feats[:half], feats[half:], method=method)
        times[method] = time.perf_counter() - t0
    rel = abs(values["eigh"] - values["pytorch-fid"]) / values["pytorch-fid"]
    print(f"FID of the reference's two halves ({half} vs {len(feats) - half}): eigh {values['eigh']:.6f} "
          f"({times['eigh']:.1f} s), sqrtm {values['pytorch-fid']:.6f} ({times['pytorch-fid']:.1f} s): "
          f"relative difference {rel:.1e}")


if __name__ == "__main__":
    main()
