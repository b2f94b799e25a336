"""Projected gradient descent under an L-infinity budget.

Madry et al. 2018 ("Towards Deep Learning Models Resistant to Adversarial
Attacks"), as used against deepfake generators by Ruiz et al. 2020 ("Disrupting
Deepfakes", I-FGSM/PGD with MSE loss); optional momentum as in MI-FGSM (Dong et
al. 2018) and expectation over transformation (Athalye et al. 2018).

Units: ``eps`` and ``alpha`` are in [0,1] pixel units (eps 0.05 on the [-1,1]
scale of Ruiz et al. is 0.025 here).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from shield.adversarial.attacks.base import Attack, Objective, StepCallback
from shield.adversarial.transforms import EotSampler

__all__ = ["PGD"]


def _rms(t: torch.Tensor) -> torch.Tensor:
    """Root-mean-square per batch item, shaped to broadcast over (N,C,H,W)."""
    return t.pow(2).flatten(1).mean(1).sqrt().view(-1, 1, 1, 1)


class PGD(Attack):
    """L-inf PGD maximising an :class:`~shield.adversarial.attacks.base.Objective`.

    Args:
        objective: the score to maximise.
        eps: L-inf budget in [0,1] units, in (0, 1].
        alpha: step size per iteration (scaled by ``budget / eps`` per pixel when a
            per-pixel budget is given).
        steps: number of gradient steps (>= 1).
        random_start: start from a uniform draw inside the budget.
        momentum: MI-FGSM decay factor (0 disables it).
        eot: random transformations applied before the objective at every step.
        eot_samples: transformations averaged per step (>= 1).
        rms_weight: optional per-pixel weight (broadcastable to the input, > 0) of the RMS
            budget: the RMS is measured on ``delta / rms_weight``, so energy costs more
            where the weight is low (a perceptual L2 norm).
        shape: optional map applied to the perturbation at the start and after every
            step, before the L-inf and RMS projections (the perceptual shaping of
            ``shield.adversarial.perceptual``: no low frequencies, luma-dominant).
        rms: optional L2 budget as a root-mean-square per value in [0,1] units (a PSNR
            floor: 20 log10(1/rms) dB). With it, steps follow the L2-normalised gradient
            and the perturbation is projected on the L-inf box, then on the L2 ball, so
            energy goes where the models are sensitive instead of everywhere (Madry et
            al. 2018, L2 PGD).
        device: where the computation runs.
    """

    def __init__(
        self,
        objective: Objective,
        *,
        eps: float,
        alpha: float,
        steps: int,
        random_start: bool = True,
        momentum: float = 0.0,
        eot: EotSampler | None = None,
        eot_samples: int = 1,
        rms: float | None = None,
        shape: Callable[[torch.Tensor], torch.Tensor] | None = None,
        rms_weight: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(objective, device=device)
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if eot_samples < 1:
            raise ValueError(f"eot_samples must be >= 1, got {eot_samples}")
        self.eps = eps
        self.alpha = alpha
        self.steps = steps
        self.random_start = random_start
        self.momentum = momentum
        if rms is not None and not 0 < rms <= eps:
            raise ValueError(f"rms must be in (0, eps], got {rms}")
        self.eot = eot
        self.eot_samples = eot_samples
        self.rms = rms
        self.shape = shape
        self.rms_weight = rms_weight

    def _hyperparameters(self) -> dict[str, object]:
        return {
            "eps": self.eps,
            "alpha": self.alpha,
            "steps": self.steps,
            "random_start": self.random_start,
            "momentum": self.momentum,
            "eot": self.eot,
            "eot_samples": self.eot_samples,
            "rms": self.rms,
            "shape": self.shape is not None,
        }

    def _score(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.eot is None:
            return self.objective(x, gen)
        total = x.new_zeros(())
        for _ in range(self.eot_samples):
            total = total + self.objective(self.eot.sample(gen)(x), gen)
        return total / self.eot_samples

    def perturb(
        self,
        x: torch.Tensor,
        *,
        gen: torch.Generator,
        budget: torch.Tensor | None,
        on_step: StepCallback | None,
    ) -> torch.Tensor:
        eps = torch.full_like(x[:1, :1], self.eps) if budget is None else budget.to(x).clamp(0, self.eps)
        alpha = self.alpha * eps / self.eps
        if self.random_start:
            noise = torch.rand(x.shape, generator=gen, dtype=x.dtype, device="cpu").to(x.device)
            delta = (noise * 2 - 1) * eps
        else:
            delta = torch.zeros_like(x)
        if self.shape is not None:
            delta = self.shape(delta)
        delta = (x + delta).clamp(0, 1) - x
        velocity = torch.zeros_like(x)
        for step in range(1, self.steps + 1):
            delta.requires_grad_(True)
            score = self._score(x + delta, gen)
            (grad,) = torch.autograd.grad(score, delta)
            with torch.no_grad():
                if self.momentum > 0:
                    grad = grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
                    velocity = self.momentum * velocity + grad
                    grad = velocity
                if self.rms is None:
                    delta = delta + alpha * grad.sign()
                else:
                    delta = delta + alpha * grad / _rms(grad).clamp_min(1e-12)
                if self.shape is not None:
                    delta = self.shape(delta)
                delta = torch.maximum(torch.minimum(delta, eps), -eps)
                delta = (x + delta).clamp(0, 1) - x
                if self.rms is not None:
                    measured = delta if self.rms_weight is None else delta / self.rms_weight.to(delta)
                    delta = delta * (self.rms / _rms(measured).clamp_min(1e-12)).clamp(max=1.0)
            if on_step is not None:
                on_step(step, self.steps, float(score.detach()))
        return (x + delta).detach()
