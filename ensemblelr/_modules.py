"""Torch modules behind the estimators.

Every module returns *logits* (or regression outputs) of shape ``(batch,)``; the
estimators turn those into log ratios and probabilities. Inputs are standardized
inside the module (buffers ``mean`` and ``scale``) so that a fitted module is a
self-contained function of raw features, on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
    "leaky_relu": nn.LeakyReLU,
}


def check_activation(name: str) -> str:
    """Raise a ValueError naming the valid choices if ``name`` is unknown."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}.")
    return name


def make_mlp(
    n_inputs: int,
    hidden_layer_sizes: Sequence[int],
    n_outputs: int | None,
    activation: str,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Build ``Linear -> act (-> dropout)`` blocks, then an optional linear head.

    With ``n_outputs=None`` the last hidden layer (with its activation) is the output,
    as for the per-event latent map Phi of a Deep Sets network.
    """
    layers: list[nn.Module] = []
    width = n_inputs
    for size in hidden_layer_sizes:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    if n_outputs is not None:
        layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """Subtract ``mean`` and divide by ``scale`` along the last axis (stored as buffers)."""

    def __init__(self, mean: Sequence[float], scale: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.mean) / self.scale


def _masked_sum(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum ``values`` (batch, events, ...) over events, skipping padded ones."""
    if mask is None:
        return values.sum(dim=1)
    weights = mask.to(values.dtype)
    if values.dim() == 3:
        weights = weights.unsqueeze(-1)
    return (values * weights).sum(dim=1)


class EventNet(nn.Module):
    """Per-event network: features ``(batch, n_features)`` -> logits ``(batch,)``."""

    def __init__(self, n_features, hidden_layer_sizes, activation, mean, scale, dropout=0.0):
        super().__init__()
        self.standardize = Standardize(mean, scale)
        self.mlp = make_mlp(n_features, hidden_layer_sizes, 1, activation, dropout)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.standardize(X)).squeeze(-1)


class FlatEnsembleNet(nn.Module):
    """The paper's dense per-ensemble model f_N on the flattened ensemble.

    With ``sort_events=True`` events are first ordered by their first feature, which
    makes the model permutation invariant at no cost in parameters.
    """

    def __init__(
        self, n_features, ensemble_size, hidden_layer_sizes, activation, mean, scale,
        sort_events=False, dropout=0.0,
    ):
        super().__init__()
        self.ensemble_size = ensemble_size
        self.sort_events = sort_events
        self.standardize = Standardize(mean, scale)
        self.mlp = make_mlp(n_features * ensemble_size, hidden_layer_sizes, 1, activation, dropout)

    def forward(self, X: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        X = self.standardize(X)
        if self.sort_events:
            order = torch.argsort(X[..., 0], dim=1)
            X = torch.gather(X, 1, order.unsqueeze(-1).expand_as(X))
        return self.mlp(X.flatten(start_dim=1)).squeeze(-1)


class DeepSetsNet(nn.Module):
    """Permutation-invariant ``F(pool_i Phi(x_i))`` (Deep Sets / Particle Flow Network)."""

    def __init__(
        self, n_features, Phi_sizes, F_sizes, activation, mean, scale,
        latent_dropout=0.0, pooling="sum",
    ):
        super().__init__()
        self.pooling = pooling
        self.standardize = Standardize(mean, scale)
        self.phi = make_mlp(n_features, Phi_sizes, None, activation)
        self.latent_dropout = nn.Dropout(latent_dropout)
        self.F = make_mlp(Phi_sizes[-1], F_sizes, 1, activation)

    def forward(self, X: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        latent = _masked_sum(self.phi(self.standardize(X)), mask)
        if self.pooling == "mean":
            counts = X.new_full((X.shape[0], 1), X.shape[1]) if mask is None else (
                mask.sum(dim=1, keepdim=True).to(latent.dtype)
            )
            latent = latent / counts
        return self.F(self.latent_dropout(latent)).squeeze(-1)


class LogRatioSumNet(nn.Module):
    """Ensemble logit ``sum_i Phi(x_i) + log_prior_odds`` with a scalar ``Phi``.

    ``log_prior_odds`` is the (fixed) log odds of the training classes, so that BCE
    training drives ``Phi`` to the per-event log likelihood ratio whatever the class
    balance and ensemble size.
    """

    def __init__(self, n_features, hidden_layer_sizes, activation, mean, scale, log_prior_odds=0.0):
        super().__init__()
        self.event_net = EventNet(n_features, hidden_layer_sizes, activation, mean, scale)
        self.register_buffer("log_prior_odds", torch.tensor(float(log_prior_odds)))

    def forward(self, X: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return _masked_sum(self.event_net(X), mask) + self.log_prior_odds
