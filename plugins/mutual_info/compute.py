"""What mutual_info measures beside the pair law of rginspect.information: the pair MI within each
level (`level_means`, `level_profile` in shells of separation) and the kNN check of what a Gaussian
fit misses (`knn_check`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rginspect.chains import Chains
from rginspect.information import knn_mi

FLOOR_ALPHA = 0.05  # a pair is above the floor beyond the null ensembles' 95th percentile


def level_means(mi: np.ndarray, level: np.ndarray, levels: np.ndarray) -> list[float]:
    """Mean pair MI within each level (NaN for a level of one site)."""
    means = []
    for a in levels:
        block = mi[np.ix_(level == a, level == a)]
        means.append(
            float(np.nanmean(block[np.triu_indices(len(block), 1)])) if len(block) > 1 else np.nan
        )
    return means


def level_profile(
    mi: np.ndarray, distance: np.ndarray, level: np.ndarray, levels: np.ndarray, bins: np.ndarray
) -> np.ndarray:
    """(level, distance) mean pair MI within each level in shells of separation."""
    within = np.full((len(levels), len(bins)), np.nan)
    for a in levels:
        members = level == a
        d, values = distance[np.ix_(members, members)], mi[np.ix_(members, members)]
        for b, r in enumerate(bins):
            shell = np.abs(d - r) < 0.5
            if shell.any():
                within[a, b] = np.nanmean(values[shell])
    return within


@dataclass(frozen=True)
class KnnCheck:
    """kNN against Gaussian MI on scalar pairs, each also on the null ensembles."""

    knn: np.ndarray
    knn_null: np.ndarray
    gaussian: np.ndarray
    gaussian_null: np.ndarray
    distance: np.ndarray

    @property
    def differences(self) -> np.ndarray:
        """Per pair: (kNN − Gaussian) beyond the same on the null ensembles."""
        return (self.knn - self.gaussian) - (self.knn_null - self.gaussian_null)

    @property
    def excess(self) -> float:
        return float(np.mean(self.differences))

    @property
    def excess_error(self) -> float:
        """The pairs' scatter: each pair is an independent draw of the estimators' noise."""
        return float(np.std(self.differences, ddof=1) / np.sqrt(len(self.differences)))


def knn_check(
    vectors: np.ndarray,
    chains: Chains,
    distance: np.ndarray,
    n_pairs: int,
    rng: np.random.Generator,
    resamples: int = 1,
    max_samples: int = 4000,
) -> KnnCheck:
    """kNN (unclipped KSG) and Gaussian MI of component 0 on site pairs (half of them nearest
    neighbours), on the latents and averaged over `resamples` null ensembles. No site is in two
    pairs (while sites last), so that the pairs' estimation errors are nearly independent and
    their scatter gives the error of the mean."""
    used: set[int] = set()
    pairs = []
    for i, j in rng.permutation(np.argwhere(np.triu(distance == 1))):
        if len(pairs) < n_pairs // 2 and not {i, j} & used:
            pairs.append((i, j))
            used |= {i, j}
    free = rng.permutation([s for s in range(vectors.shape[1]) if s not in used])
    pairs += [tuple(p) for p in free[: 2 * (n_pairs - len(pairs))].reshape(-1, 2)]
    while len(pairs) < n_pairs:  # too few sites for disjoint pairs
        pairs.append(tuple(rng.choice(vectors.shape[1], 2, replace=False)))
    scalar = chains.kept(vectors[:, :, 0])[:max_samples]
    nulls = [chains.null_ensemble(vectors[:, :, 0], rng)[:max_samples] for _ in range(resamples)]

    def gaussian(x: np.ndarray, y: np.ndarray) -> float:
        return float(-0.5 * np.log1p(-(np.corrcoef(x, y)[0, 1] ** 2)))

    def on_nulls(estimate: Callable[[np.ndarray, np.ndarray], float], i: int, j: int) -> float:
        return float(np.mean([estimate(null[:, i], null[:, j]) for null in nulls]))

    return KnnCheck(
        knn=np.array([knn_mi(scalar[:, i], scalar[:, j]) for i, j in pairs]),
        knn_null=np.array([on_nulls(knn_mi, i, j) for i, j in pairs]),
        gaussian=np.array([gaussian(scalar[:, i], scalar[:, j]) for i, j in pairs]),
        gaussian_null=np.array([on_nulls(gaussian, i, j) for i, j in pairs]),
        distance=np.array([distance[i, j] for i, j in pairs]),
    )
