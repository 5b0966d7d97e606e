"""What classifier-free guidance buys: a class-conditional DDPM on MNIST (the README recipe's UNet
with --p_uncond 0.1, 2,000 steps), scored by the MNIST evaluator on 1,000 samples (100 per class,
DDIM-50, EMA weights) at guidance w = 0, 1, 2, 4 (the seed report: 0.781 unguided, 0.995 guided).

    nice -n 19 .venv/bin/python bench/guidance_table.py [--db bench-out/guidance.db]

Resumable: the run is trained once (found by its name, resumed if stopped) and each w is a
stored accuracy score whose provenance names w and N, so a rerun scores only what is missing.
"""
from __future__ import annotations

import argparse

from tables_common import open_store, run_named, stored_score, tuigen

RECIPE = ["cond-ddpm", "--dataset", "mnist", "--image_size", "28", "--channels", "32", "--dim_mults", "1,2,4",
          "--num_res_blocks", "1", "--attn_resolutions", "7", "--batch_size", "64", "--lr", "5e-4",
          "--ema_decay", "0.998", "--ema_every", "1", "--train_num_steps", "2000", "--sample_every", "500",
          "--checkpoint_every", "500", "--precision", "bf16", "--num_samples", "100", "--p_uncond", "0.1"]
PER_CLASS = 100
GUIDANCE = (0.0, 1.0, 2.0, 4.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="bench-out/guidance.db")
    args = p.parse_args()
    store = open_store(args.db)
    run_id = run_named(store, args.db, "mnist-cfg", RECIPE)
    step = store.get_run(run_id).step
    want = dict(n=10 * PER_CLASS, sampler="ddim", steps=50)
    for w in GUIDANCE:
        if stored_score(store, run_id, "accuracy", step, guidance=w, **want) is None:
            tuigen(args.db, "accuracy", run_id, "--guidance", w, "--per_class", PER_CLASS)
    cells = [stored_score(store, run_id, "accuracy", step, guidance=w, **want) for w in GUIDANCE]
    held_out = next((c["provenance"]["evaluator_held_out_accuracy"] for c in cells if c), None)
    print(f"\nevaluator accuracy of {10 * PER_CLASS} samples, DDIM-50, EMA weights (run {run_id}, checkpoint {step}; "
          f"the evaluator's own held-out accuracy {held_out})")
    print("| guidance w | " + " | ".join(f"{w:g}" for w in GUIDANCE) + " |")
    print("|---|" + "---|" * len(GUIDANCE))
    print("| accuracy | " + " | ".join(f"{c['value']:.3f}" if c else "-" for c in cells) + " |")


if __name__ == "__main__":
    main()
