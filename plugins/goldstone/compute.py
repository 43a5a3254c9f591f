"""goldstone's numbers: the phase of each candidate latent (each top-level latent pair and the
top level's principal plane) and its phase locking with the global phase."""

from __future__ import annotations

import numpy as np


def candidate_phases(z: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(candidate, sample) phases of each top-level latent pair at (rows, cols) and of the top
    level's two leading principal directions, from (sample, 2, L, L) latents."""
    pairs = z[:, :, rows, cols]  # (sample, component, site)
    phases = np.arctan2(pairs[:, 1], pairs[:, 0]).T  # (site, sample)
    return np.vstack([phases, principal_phase(pairs.reshape(len(z), -1))[None]])


def principal_phase(latents: np.ndarray) -> np.ndarray:
    """Phase of each sample in the plane of the two leading principal directions."""
    centred = latents - latents.mean(0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ directions[:2].T
    return np.arctan2(projected[:, 1], projected[:, 0])


def phase_locking(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """|⟨exp i(a − b)⟩| and |⟨exp i(a + b)⟩|: 1 when a = ±b + const, ~1/√n when independent."""
    return float(np.abs(np.mean(np.exp(1j * (a - b))))), float(
        np.abs(np.mean(np.exp(1j * (a + b))))
    )
