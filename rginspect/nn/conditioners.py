"""The small networks that compute coupling scales s and shifts t from the kept entries of a block.

Their parameter names mirror the published checkpoints' so the format loaders only strip prefixes.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class Swish(nn.Module):
    """x·sigmoid(β·x) with a learnable β per feature (RG-Flow)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.scale * x)


class WeightNormLinear(nn.Module):
    """Linear layer with weight = g·v/‖v‖ per output row, stored as weight_v, weight_g (RG-Flow).

    Written out rather than via torch's parametrization so that it stays a plain function of its
    parameters under torch.func and loads the upstream key names directly.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = math.sqrt(2.81 * 3 / in_features)  # the gain of swish, as upstream
        v = torch.empty(out_features, in_features).uniform_(-bound, bound)
        self.weight_v = nn.Parameter(v)
        # a meta-device skeleton (loaders check sizes on one) needs only the shape, and a norm
        # on the meta device first imports torch._dynamo: 2 s of every checkpoint load
        g = torch.empty(out_features, 1) if v.is_meta else v.norm(dim=1, keepdim=True)
        self.weight_g = nn.Parameter(g)
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight(), self.bias)

    def weight(self) -> torch.Tensor:
        """g·v/‖v‖, kept between calls while v and g are the same unchanged parameters and no
        gradient flows to them: analyses run the flow thousands of times on fixed weights, and
        recomputing them was 16% of a decode. Tensors swapped in by torch.func.functional_call
        are not nn.Parameters and are never cached."""
        v, g = self.weight_v, self.weight_g
        constant = not (torch.is_grad_enabled() and (v.requires_grad or g.requires_grad))
        if not (constant and isinstance(v, nn.Parameter) and isinstance(g, nn.Parameter)):
            return g * v / v.norm(dim=1, keepdim=True)
        key = (v._version, g._version, v.data_ptr(), g.data_ptr(), v.dtype, v.device)
        cached = self.__dict__.get("_weight_cache")
        if cached is None or cached[0] is not v or cached[1] is not g or cached[2] != key:
            with torch.no_grad():
                cached = (v, g, key, g * v / v.norm(dim=1, keepdim=True))
            self.__dict__["_weight_cache"] = cached
        return cached[3]


class FeatureScale(nn.Module):
    """Multiply by a learnable vector initialised at zero, so every coupling starts as the identity."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * x


class ResNetConditioner(nn.Module):
    """RG-Flow's conditioner: residual blocks of Swish→WeightNormLinear, a final scale, optional tanh."""

    def __init__(self, width: int, hidden: int, n_res_blocks: int, n_mlp: int, tanh: bool) -> None:
        super().__init__()
        widths = [width] + [hidden] * n_mlp + [width]
        self.res_blocks = nn.ModuleList(
            nn.Sequential(
                *[
                    module
                    for a, b in itertools.pairwise(widths)
                    for module in (Swish(a), WeightNormLinear(a, b))
                ]
            )
            for _ in range(n_res_blocks)
        )
        self.scale = FeatureScale(width)
        self.tanh = tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = (x + block(x)) / math.sqrt(2)
        x = self.scale(x)
        return torch.tanh(x) if self.tanh else x


class ScalableTanh(nn.Module):
    """a·tanh(x) with a learnable a per feature, initialised at 0 (NeuralRG's s-net output)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.tanh(x)


class MLPConditioner(nn.Module):
    """NeuralRG's conditioner: Linear, ELU, ..., Linear, and a scalable tanh for the s-net."""

    def __init__(self, width: int, hidden: int, n_mlp: int, scalable_tanh: bool) -> None:
        super().__init__()
        widths = [width] + [hidden] * n_mlp + [width]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Linear(a, b))
            if i < n_mlp:
                layers.append(nn.ELU())
        if scalable_tanh:
            layers.append(ScalableTanh(width))
        self.layerList = nn.ModuleList(layers)  # noqa: N815 - the upstream key name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layerList:
            x = layer(x)
        return x


class SplineConditioner(nn.Module):
    """Swish MLP from a row's kept entries to 3K−1 spline parameters per entry. The last layer
    starts at zero and the output is offset to the identity spline, so a new coupling is the
    identity, as the affine couplings' zero-initialised scales make them."""

    def __init__(
        self, width: int, hidden: int, n_mlp: int, n_parameters: int, identity: torch.Tensor
    ) -> None:
        super().__init__()
        widths = [width] + [hidden] * n_mlp
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(widths):
            layers += [WeightNormLinear(a, b), Swish(b)]
        self.hidden = nn.Sequential(*layers)
        self.out = nn.Linear(hidden if n_mlp else width, width * n_parameters)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("identity", identity.clone())
        self.width = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parameters = self.out(self.hidden(x)).reshape(x.shape[0], self.width, -1)
        return parameters + self.identity
