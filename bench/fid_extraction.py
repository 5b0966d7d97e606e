"""FID feature-extraction speed: tuigen's extractor vs plain pytorch-fid, and first vs cached FID.

    .venv/bin/python bench/fid_extraction.py [--n 200] [--batch-size 50] [--device cpu]
                                             [--threads T] [--workers W] [--rounds 4]

Both sides use the same InceptionV3 module class with the same mapped TF weights, the same
device, thread count and batch size, on the same N MNIST-M images (28x28 RGB, so both resize
to 299x299):

- pytorch-fid: ``pytorch_fid.fid_score.get_activations`` over the images saved as PNG files
  (its DataLoader with ``--workers`` processes, default as pytorch-fid's CLI: min(8, cores)),
  ``InceptionV3`` with its own resize and 2x - 1 scaling inside;
- tuigen, from memory: ``image_features`` on the uint8 array (scaling "pytorch-fid", the
  default, so the features can be compared with pytorch-fid's);
- tuigen, from the folder: ``folder_stats`` (uncached), the path of ``tuigen fid DIR_A DIR_B``:
  the one folder reader, decoding and extracting a batch at a time.

Then ``compare`` on two halves of the images with an empty cache (first), repeated (everything
cached), reversed (features cached, FID/KID recomputed; with the default eigh distance and with
pytorch-fid's sqrtm) and with a new second half (reference cached). Model construction is outside
every timing; each path first runs one warm-up batch. The three extraction paths take
turns on ``--rounds`` slices of the images, so load from other processes hits them alike.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="images per extraction pass")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (slices of the images)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads, both sides")
    parser.add_argument("--workers", type=int, default=min(8, _cores()),
                        help="pytorch-fid DataLoader workers (its CLI default: min(8, cores))")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory(prefix="tuigen-fid-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["TUIGEN_CACHE"] = str(tmp / "cache")  # fresh caches: nothing is reused from earlier runs
        from pytorch_fid.fid_score import get_activations

        from tuigen.data import load_dataset
        from tuigen.metrics import inception
        from tuigen.metrics.fid import compare, folder_stats, image_features

        data = load_dataset("mnist-m", cache_dir=tmp / "cache").images
        images = np.concatenate([data] * (args.n // len(data) + 1))[:args.n]  # (N, 3, 28, 28)
        rounds = max(1, min(args.rounds, args.n // args.batch_size))
        bounds = np.linspace(0, args.n, rounds + 1).astype(int)
        folders = []
        for r in range(rounds):
            folders.append(tmp / f"images{r}")
            folders[-1].mkdir()
            for i in range(bounds[r], bounds[r + 1]):
                Image.fromarray(images[i].transpose(1, 2, 0)).save(folders[-1] / f"{i:06d}.png")
        print(f"{args.n} MNIST-M images 28x28 -> 299x299, batch {args.batch_size}, device {device}, "
              f"torch threads {torch.get_num_threads()}, pytorch-fid workers {args.workers}, "
              f"{rounds} interleaved rounds")

        t = time.perf_counter()
        pf_model = inception.mapped_inception(resize_input=True, normalize_input=True, device=device)
        build_pf = time.perf_counter() - t
        t = time.perf_counter()
        inception.get_extractor(device)
        build_ours = time.perf_counter() - t
        print(f"model build (weights mapped from the TorchScript): pytorch-fid module {build_pf:.1f}s, "
              f"tuigen extractor {build_ours:.1f}s")

        warm = sorted(folders[0].glob("*.png"))[:args.batch_size]  # a full batch: same shapes as timed
        get_activations(warm, pf_model, args.batch_size, 2048, device, args.workers)
        image_features(images[:args.batch_size], batch_size=args.batch_size, device=device, cache=False)

        # The paths take turns on each slice of the images, so a busy machine slows all of them alike.
        t_pf = t_mem = t_folder = 0.0
        ref, ours, ratios = [], [], []
        for r in range(rounds):
            files = sorted(folders[r].glob("*.png"))
            t = time.perf_counter()
            ref.append(get_activations(files, pf_model, args.batch_size, 2048, device, args.workers))
            dt_pf = time.perf_counter() - t
            t_pf += dt_pf

            t = time.perf_counter()
            ours.append(image_features(images[bounds[r]:bounds[r + 1]], batch_size=args.batch_size, device=device,
                                       cache=False, scaling="pytorch-fid"))
            dt_mem = time.perf_counter() - t
            t_mem += dt_mem
            ratios.append(dt_pf / dt_mem)

            t = time.perf_counter()
            folder_stats(folders[r], batch_size=args.batch_size, device=device, cache=False)
            t_folder += time.perf_counter() - t
        ref, ours = np.concatenate(ref), np.concatenate(ours)

        diff = np.abs(ours - ref).max() / np.abs(ref).max()
        n = args.n
        print(f"pytorch-fid get_activations (PNG folder) : {n / t_pf:7.2f} img/s  ({t_pf:.1f}s)")
        print(f"tuigen image_features (uint8 array)      : {n / t_mem:7.2f} img/s  ({t_mem:.1f}s)  "
              f"x{t_pf / t_mem:.2f}")
        print(f"tuigen folder_stats (PNG folder)         : {n / t_folder:7.2f} img/s  ({t_folder:.1f}s)  "
              f"x{t_pf / t_folder:.2f}")
        print(f"per-round speed-up (array vs pytorch-fid): {' '.join(f'{x:.2f}' for x in ratios)}")
        print(f"features vs pytorch-fid (same scaling): max |diff| / max |feature| = {diff:.2e}")

        half = n // 2
        a, b = images[:half], images[half:]
        b2 = b.copy()
        b2[:, :, 0, 0] ^= 1  # a "new generated set": one pixel per image differs
        timings = {}
        for label, x, y, method in [("first (empty cache)", a, b, "eigh"),
                                    ("repeat (all cached)", a, b, "eigh"),
                                    ("reversed (features cached, FID/KID recomputed)", b, a, "eigh"),
                                    ("reversed, fid_method='pytorch-fid' (sqrtm)", b, a, "pytorch-fid"),
                                    ("new second set (reference cached)", a, b2, "eigh")]:
            t = time.perf_counter()
            result = compare(x, y, device=device, batch_size=args.batch_size, fid_method=method)
            timings[label] = time.perf_counter() - t
            print(f"compare {label:48s}: {timings[label]:8.3f}s  FID {result.fid:.3f}  "
                  f"KID {result.kid_mean:.4f}")
        first = timings["first (empty cache)"]
        print(f"first / cached compare: x{first / timings['repeat (all cached)']:.0f}; "
              f"first / features-cached: x{first / timings['reversed (features cached, FID/KID recomputed)']:.1f}")
        print(f"warning: {result.warning}")


if __name__ == "__main__":
    main()
