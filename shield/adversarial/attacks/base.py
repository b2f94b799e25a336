"""Plumbing shared by every attack: eval mode, frozen weights, device, seeding, repr.

Expert layer (STYLE.md, "two levels"): attacks take an :class:`Objective` (a
differentiable score of an image, larger = more disruption) and return the
adversarial image. ``shield.adversarial.protect`` is the recipe most callers want.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import torch
from torch import nn

__all__ = ["Objective", "Attack", "StepCallback"]

#: Called after each attack step with (step index from 1, total steps, loss value).
StepCallback = Callable[[int, int, float], None]


class Objective(Protocol):
    """A differentiable score of an image; the attack maximises it."""

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Scalar score of ``x`` (N,3,H,W) in [0,1]; ``gen`` drives any random choice."""
        ...

    def networks(self) -> Sequence[nn.Module]:
        """Every network the score runs through (frozen and put in eval mode by the attack)."""
        ...


class Attack:
    """Base class: owns eval mode and its restore, frozen weights and the device.

    Subclasses store hyperparameters in ``__init__`` (names ``eps``, ``alpha``,
    ``steps``, ``random_start`` in [0,1] pixel units) and implement :meth:`perturb`.
    Randomness only comes from the ``torch.Generator`` passed to :meth:`__call__`, so a
    seeded generator gives a reproducible result.
    """

    def __init__(self, objective: Objective, *, device: torch.device | str = "cpu") -> None:
        self.objective = objective
        self.device = torch.device(device)

    def _hyperparameters(self) -> dict[str, object]:
        return {}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({params})"

    @contextlib.contextmanager
    def _frozen(self) -> Iterator[None]:
        """Eval mode and ``requires_grad=False`` on every network, restored afterwards."""
        saved: list[tuple[nn.Module, bool]] = []
        grads: list[tuple[nn.Parameter, bool]] = []
        for net in self.objective.networks():
            for module in net.modules():
                saved.append((module, module.training))
            for p in net.parameters():
                grads.append((p, p.requires_grad))
            net.eval()
            net.requires_grad_(False)
        try:
            yield
        finally:
            for module, training in saved:
                module.training = training
            for p, flag in grads:
                p.requires_grad_(flag)

    def __call__(
        self,
        x: torch.Tensor,
        *,
        gen: torch.Generator,
        budget: torch.Tensor | None = None,
        on_step: StepCallback | None = None,
    ) -> torch.Tensor:
        """Adversarial version of ``x``.

        Args:
            x: (N,3,H,W) clean images in [0,1].
            gen: the only source of randomness (seed it for reproducible output).
            budget: optional per-pixel L-inf budget broadcastable to ``x``, each value
                in [0, eps] (perceptual masking, feathering); defaults to ``eps`` everywhere.
            on_step: progress callback.

        Returns:
            (N,3,H,W) in [0,1] with ``|out - x| <= budget`` (continuous values: the caller
            quantises and re-checks the budget on the 8-bit grid).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x: expected (N,3,H,W), got {tuple(x.shape)}")
        if x.min() < 0 or x.max() > 1:
            raise ValueError("x: values must lie in [0,1]")
        with self._frozen():
            return self.perturb(x.detach().to(self.device), gen=gen, budget=budget, on_step=on_step)

    def perturb(
        self,
        x: torch.Tensor,
        *,
        gen: torch.Generator,
        budget: torch.Tensor | None,
        on_step: StepCallback | None,
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError
