"""t-SNE of feature vectors (scikit-learn), for plots of what a network's latent space
separates: classes (it should) and domains (after adaptation it should not).

numpy and scikit-learn only; torch-free. Deterministic: PCA initialisation and a fixed
random_state give the same embedding for the same features.
"""
from __future__ import annotations

import numpy as np


def subsample(n: int, k: int, rng: np.random.Generator | int = 0) -> np.ndarray:
    """Sorted indices of min(n, k) of n items, drawn without replacement."""
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    if k >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=k, replace=False))


def tsne_embed(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50,
               n_iter: int | None = None, threads: int | None = 1) -> np.ndarray:
    """(N, D) features -> (N, 2) t-SNE coordinates (init="pca", random_state=seed).

    Features are first reduced to `pca_dims` with PCA (standard practice, and much faster
    for wide features); the perplexity is lowered for small N, which t-SNE requires
    (perplexity < N).

    `threads` caps the OpenMP/BLAS threads (None = the library default). One is the default
    because Barnes-Hut t-SNE of a thousand points takes seconds on one core, while OpenMP
    threads spin-wait badly when the cores are shared: on a busy 2-core machine, 80 points
    took 20 s with 2 threads (torch loaded) and 0.3 s with 1.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        return _tsne(features, seed, perplexity, pca_dims, n_iter)


def _tsne(features: np.ndarray, seed: int, perplexity: float, pca_dims: int, n_iter: int | None) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(x)
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    if x.shape[1] > pca_dims and n > pca_dims:
        x = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
    kwargs = dict(n_components=2, init="pca", random_state=seed, perplexity=min(perplexity, (n - 1) / 3),
                  learning_rate="auto")
    if n_iter is not None:
        kwargs["max_iter"] = n_iter
    return TSNE(**kwargs).fit_transform(x).astype(np.float32)
