"""Training objective of the First Order Motion Model at reduced scale.

Paper (Siarohin et al. 2019, section 3.4 and the official ``full_model``):
reconstruction loss on an image pyramid + equivariance of keypoints and jacobians
under a random thin-plate-spline warp. Differences here, stated plainly:
- the paper's reconstruction term is a VGG-19 perceptual loss; no VGG weights are
  available offline, so we use an L1 loss on each level of the same image pyramid
  (scales 1, 1/2, 1/4, 1/8), optionally plus (1 - SSIM) at full scale (the
  Gaussian-window SSIM of :mod:`shield.adversarial.metrics`);
- no discriminator (the official vox config also trains without the GAN term's
  feature matching at the start; we never add it);
- optionally (``autoencode`` > 0) an L1 term on the generator's own rebuild of the
  driving frame with no warp and no occlusion (:func:`autoencode`). Without a
  perceptual loss the decoder learns to blur; this term asks it to carry detail
  through. It adds no parameters: the network is the paper's.
- optionally (``perceptual`` > 0) the paper's idea of a perceptual loss with the one
  trained image network available offline: L1 between features of dlib's face
  descriptor (:class:`DlibFeatures`) of the prediction and of the driving frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.metrics import ssim
from shield.adversarial.models.blocks import AntiAliasInterpolation2d, make_coordinate_grid
from shield.adversarial.models.dlib_resnet import DlibFaceDescriptor
from shield.adversarial.models.fomm import FOMM, Keypoints

__all__ = ["LossWeights", "LossTerms", "RandomTPS", "ImagePyramid", "DlibFeatures", "FommObjective", "autoencode"]


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms; ``scales`` are the pyramid levels of the L1 term."""

    scales: tuple[float, ...] = (1.0, 0.5, 0.25, 0.125)
    reconstruction: float = 100.0
    ssim: float = 0.0
    autoencode: float = 0.0
    perceptual: float = 0.0  # relative to the reconstruction term, like autoencode
    equivariance_value: float = 10.0
    equivariance_jacobian: float = 10.0
    sigma_affine: float = 0.05
    sigma_tps: float = 0.005
    points_tps: int = 5


class LossTerms(NamedTuple):
    total: torch.Tensor
    reconstruction: torch.Tensor
    ssim: torch.Tensor
    autoencode: torch.Tensor  # L1 of the generator's rebuild with no warp (0 when off)
    perceptual: torch.Tensor  # mean L1 of dlib face-network features (0 when off)
    equivariance_value: torch.Tensor
    equivariance_jacobian: torch.Tensor
    l1: torch.Tensor  # unweighted full-scale L1 on [0,1], for monitoring


class RandomTPS:
    """Random affine + thin-plate-spline warp of normalised coordinates (paper eq. 7).

    Args:
        batch: batch size; sigma_affine / sigma_tps: std of the affine and TPS noise;
        points: control points per side; generator: torch RNG (None: global).
    """

    def __init__(
        self, batch: int, sigma_affine: float, sigma_tps: float, points: int, generator: torch.Generator | None = None
    ) -> None:
        noise = torch.randn(batch, 2, 3, generator=generator) * sigma_affine
        self.theta = noise + torch.eye(2, 3).view(1, 2, 3)
        self.control_points = make_coordinate_grid(points, points).view(1, -1, 2)
        self.control_params = torch.randn(batch, 1, points**2, generator=generator) * sigma_tps

    def warp_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) -> (B, N, 2)."""
        theta = self.theta.to(coords).unsqueeze(1)
        out = torch.matmul(theta[:, :, :, :2], coords.unsqueeze(-1)).squeeze(-1) + theta[:, :, :, 2]
        cp = self.control_points.to(coords)
        dist = (coords.unsqueeze(2) - cp.unsqueeze(1)).abs().sum(-1)
        radial = dist**2 * torch.log(dist + 1e-6)
        return out + (radial * self.control_params.to(coords)).sum(dim=2, keepdim=True)

    def jacobian(self, coords: torch.Tensor) -> torch.Tensor:
        """d warp / d coords at ``coords`` (B, N, 2) -> (B, N, 2, 2), differentiable."""
        if not coords.requires_grad:
            coords = coords.detach().requires_grad_(True)
        new = self.warp_coordinates(coords)
        gx = torch.autograd.grad(new[..., 0].sum(), coords, create_graph=True)[0]
        gy = torch.autograd.grad(new[..., 1].sum(), coords, create_graph=True)[0]
        return torch.stack([gx, gy], dim=-2)

    def warp_image(self, image: torch.Tensor) -> torch.Tensor:
        b, _, h, w = image.shape
        grid = make_coordinate_grid(h, w, dtype=image.dtype, device=image.device).view(1, h * w, 2).expand(b, -1, -1)
        grid = self.warp_coordinates(grid).view(b, h, w, 2)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


class ImagePyramid(nn.Module):
    """Anti-aliased copies of an image at several scales (scale 1 is the input)."""

    def __init__(self, scales: tuple[float, ...], channels: int = 3) -> None:
        super().__init__()
        self.scales = scales
        self.downs = nn.ModuleList(AntiAliasInterpolation2d(channels, s) for s in scales)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [down(x) for down in self.downs]


class DlibFeatures(nn.Module):
    """Activations of dlib's face descriptor network, for a perceptual loss.

    Frames are resized to ``size`` px and run through the stem and the first ``units``
    residual units (default: up to the 128-channel level). The network's convolutions
    are unpadded, so ``size`` must leave the deepest unit a few pixels; 128 does.
    The network is frozen: it is a fixed measure, not trained.
    """

    def __init__(self, net: DlibFaceDescriptor, size: int = 128, units: int = 10) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.size = size
        self.units = units

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        resized = F.interpolate(image, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return self.net.activations(resized, self.units)

    def distance(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over levels of the L1 between features; no gradient flows into ``target``."""
        with torch.no_grad():
            wanted = self(target)
        return torch.stack([(a - b).abs().mean() for a, b in zip(self(prediction), wanted, strict=True)]).mean()


def autoencode(model: FOMM, image: torch.Tensor) -> torch.Tensor:
    """The generator's rebuild of ``image`` with no warp and no occlusion mask."""
    return model.generator.decode(model.generator.encode(image))


class FommObjective(nn.Module):
    """Reconstruction of the driving frame from the source + keypoint equivariance."""

    def __init__(self, model: FOMM, weights: LossWeights, features: DlibFeatures | None = None) -> None:
        super().__init__()
        if weights.perceptual > 0 and features is None:
            raise ValueError("a perceptual weight needs the feature network (DlibFeatures)")
        self.model = model
        self.weights = weights
        self.features = features
        self.pyramid = ImagePyramid(weights.scales, model.config.common.num_channels)

    def forward(self, source: torch.Tensor, driving: torch.Tensor, generator: torch.Generator | None = None) -> LossTerms:
        w = self.weights
        kp_source = self.model.keypoints(source)
        kp_driving = self.model.keypoints(driving)
        prediction = self.model.generate(source, kp_source, kp_driving)
        rec = sum(
            (p - d).abs().mean() for p, d in zip(self.pyramid(prediction), self.pyramid(driving), strict=True)
        )
        assert isinstance(rec, torch.Tensor)
        s = ssim(prediction, driving).mean() if w.ssim > 0 else torch.ones((), device=source.device)
        zero = torch.zeros((), device=source.device)
        ae = (autoencode(self.model, driving) - driving).abs().mean() if w.autoencode > 0 else zero
        perc = self.features.distance(prediction, driving) if w.perceptual > 0 and self.features is not None else zero
        eq_value, eq_jac = self._equivariance(driving, kp_driving, generator)
        total = (
            w.reconstruction * (rec + w.autoencode * ae + w.perceptual * perc)
            + w.ssim * (1 - s)
            + w.equivariance_value * eq_value
            + w.equivariance_jacobian * eq_jac
        )
        l1 = (prediction - driving).abs().mean().detach()
        return LossTerms(total, rec.detach(), s.detach(), ae.detach(), perc.detach(), eq_value.detach(), eq_jac.detach(), l1)

    def _equivariance(
        self, driving: torch.Tensor, kp_driving: Keypoints, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights
        tps = RandomTPS(driving.shape[0], w.sigma_affine, w.sigma_tps, w.points_tps, generator)
        kp_t = self.model.keypoints(tps.warp_image(driving))
        eq_value = (kp_driving.value - tps.warp_coordinates(kp_t.value)).abs().mean()
        jac_t = torch.matmul(tps.jacobian(kp_t.value), kp_t.jacobian)
        product = torch.matmul(torch.inverse(kp_driving.jacobian), jac_t)
        eye = torch.eye(2, dtype=product.dtype, device=product.device).view(1, 1, 2, 2)
        eq_jac = (eye - product).abs().mean()
        return eq_value, eq_jac
