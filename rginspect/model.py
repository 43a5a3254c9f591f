"""RGFlowModel: the one contract every analysis relies on, whatever checkpoint it came from.

A model maps data x (batch, C, L, L) to latents z of the same shape and back. Each latent belongs to an RG
level (0 = finest). encode/decode/log_prob are pure tensor functions, so torch.func transforms apply.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .nn.architectures import build_flow
from .nn.mera import MERAFlow
from .nn.preprocessing import LogitTransform
from .nn.priors import Prior

DOMAINS = ("image", "field")


class RGFlowModel(nn.Module):
    """A trained RG flow with its prior, level map and (for images) logit preprocessing.

    `flow` needs encode(x) -> (z, log|det ∂z/∂x|) and decode(z) -> (x, log|det ∂x/∂z|).
    `config` is set for the built-in architectures and makes the model savable in the native format.
    """

    def __init__(
        self,
        flow: nn.Module,
        prior: Prior,
        latent_level: np.ndarray,
        *,
        domain: str,
        data_shape: tuple[int, int, int],
        config: dict[str, Any] | None = None,
        preprocessing: LogitTransform | None = None,
        action: nn.Module | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, not {domain!r}")
        level = np.asarray(latent_level, dtype=np.int64)
        if level.shape == data_shape[1:]:
            level = np.broadcast_to(level, data_shape).copy()
        if level.shape != tuple(data_shape):
            raise ValueError(f"latent_level has shape {level.shape}, expected {data_shape}")
        self.flow = flow
        self.prior = prior
        self.preprocessing = preprocessing
        self.action = action
        self.domain = domain
        self.data_shape = tuple(data_shape)
        self.latent_level = level
        self.n_levels = int(level.max()) + 1
        self.config = config
        self.provenance = dict(provenance or {})
        self._cone: sp.csr_matrix | None = None

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        action: nn.Module | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> RGFlowModel:
        """A default-initialised model of a built-in architecture (see rginspect.nn.architectures)."""
        flow, prior = build_flow(config)
        channels, L = config["channels"], config["L"]
        domain = config["domain"]
        preprocessing = LogitTransform(config["logit_constraint"]) if domain == "image" else None
        return cls(
            flow,
            prior,
            flow.geometry.latent_level(),
            domain=domain,
            data_shape=(channels, L, L),
            config=config,
            preprocessing=preprocessing,
            action=action,
            provenance=provenance,
        )

    # -- the flow ---------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Data -> latents, with log|det ∂z/∂x| per sample (the RG direction)."""
        return self.flow.encode(x)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents -> data, with log|det ∂x/∂z| per sample (the generative direction)."""
        return self.flow.decode(z)

    def encode_by_layer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Encode, with log|det ∂z/∂x| split by RG layer: (z, (batch, layers), level of each layer).

        Flows without a known hierarchy give one layer of level −1.
        """
        if isinstance(self.flow, MERAFlow):
            z, logdets = self.flow.encode_by_sublayer(x)
            geometry = self.flow.geometry
            return z, logdets, [geometry.sublayer_level(s) for s in range(geometry.n_sublayers)]
        z, logdet = self.encode(x)
        return z, logdet[:, None], [-1]

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x) in model space (for images: logit space; add preprocess's log-det for [0,1])."""
        z, logdet = self.encode(x)
        return self.prior.log_prob(z) + logdet

    @torch.no_grad()
    def sample(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        return_log_prob: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """n samples in model space; with return_log_prob, also log q(x) of the untempered model."""
        z = self.prior.sample((n, *self.data_shape), temperature, generator)
        x, logdet = self.decode(z)
        if return_log_prob:
            return x, self.prior.log_prob(z) - logdet
        return x

    # -- images ---------------------------------------------------------------------------------
    def preprocess(
        self,
        images01: torch.Tensor,
        dequantize: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images in [0,1] -> model space, with the log-det of that map per sample."""
        self._require_image("preprocess")
        return self.preprocessing(images01, dequantize, generator)

    def postprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Model space -> images, clipped to [0,1]."""
        self._require_image("postprocess")
        return self.preprocessing.inverse(x).clamp(0, 1)

    def _require_image(self, what: str) -> None:
        if self.preprocessing is None:
            raise TypeError(f"{what} is for image models; this model's domain is {self.domain!r}")

    # -- structure --------------------------------------------------------------------------------
    @property
    def n_latents(self) -> int:
        return int(np.prod(self.data_shape))

    def latents_per_level(self) -> list[int]:
        return np.bincount(self.latent_level.ravel(), minlength=self.n_levels).tolist()

    def cone_matrix(self) -> sp.csr_matrix:
        """Boolean (latent, data entry) matrix, flat C-order indices: which entries a latent can move.

        Derived from the block index tables: decoding applies sublayer S−1 first, and each sublayer
        mixes exactly the entries of one bijector row. Models without tables get the full matrix.
        """
        if self._cone is None:
            n = self.n_latents
            if isinstance(self.flow, MERAFlow):
                reach = sp.identity(n, dtype=np.int32, format="csr")
                for s in reversed(range(self.flow.geometry.n_sublayers)):
                    reach = _binary(reach @ _mixing_matrix(self.flow.entry_groups(s), n))
                self._cone = reach.astype(bool)
            else:
                self._cone = sp.csr_matrix(np.ones((n, n), dtype=bool))
        return self._cone

    def latent_cone(self, latent: tuple[int, int, int] | int) -> np.ndarray:
        """Boolean mask of data_shape: the data entries this latent can influence."""
        row = self.cone_matrix()[self._flat(latent)].toarray()
        return row.reshape(self.data_shape)

    def data_cone(self, entry: tuple[int, int, int] | int) -> np.ndarray:
        """Boolean mask of data_shape: the latents that can influence this data entry."""
        column = self.cone_matrix()[:, self._flat(entry)].toarray()
        return column.reshape(self.data_shape)

    def _flat(self, index: tuple[int, int, int] | int) -> int:
        if isinstance(index, (int, np.integer)):
            return int(index)
        return int(np.ravel_multi_index(tuple(index), self.data_shape))

    # -- description ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """A JSON-able model card."""
        return {
            "format": self.provenance.get("format"),
            "architecture": (self.config or {}).get("architecture", type(self.flow).__name__),
            "config": self.config,
            "domain": self.domain,
            "data_shape": list(self.data_shape),
            "n_levels": self.n_levels,
            "latents_per_level": self.latents_per_level(),
            "prior": {"kind": self.prior.kind, "scale": float(self.prior.scale)},
            "parameters": sum(p.numel() for p in self.parameters()),
            "dtype": str(next(iter(self.state_dict().values())).dtype).removeprefix("torch."),
            "action": self.action.config() if self.action is not None else None,
            "provenance": self.provenance,
        }


def _mixing_matrix(groups: np.ndarray, n: int) -> sp.csr_matrix:
    """Symmetric 0/1 matrix linking every pair of entries in one row of `groups`; identity elsewhere."""
    rows, width = groups.shape
    a = np.repeat(groups, width, axis=1).ravel()
    b = np.tile(groups, (1, width)).ravel()
    touched = np.zeros(n, dtype=bool)
    touched[groups.ravel()] = True
    untouched = np.flatnonzero(~touched)
    a = np.concatenate([a, untouched])
    b = np.concatenate([b, untouched])
    return sp.csr_matrix((np.ones(a.size, dtype=np.int32), (a, b)), shape=(n, n))


def _binary(m: sp.csr_matrix) -> sp.csr_matrix:
    m.data[:] = 1
    return m
