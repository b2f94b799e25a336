"""CycleGAN ResNet-9-block generator of vintagify ("photo to vintage"), native PyTorch.

Reproduces ``vintagify/generator.py`` ``ResnetGenerator(input_nc=3, output_nc=3, ngf=64,
n_blocks=9)`` of the vintagify 0.1.2 wheel (MIT), which is the generator of Zhu et al.,
"Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
(ICCV 2017, appendix 7.2, ``c7s1-64, d128, d256, R256 x9, u128, u64, c7s1-3``)::

    ReflectionPad(3) Conv7x7(3->64) IN ReLU
    Conv3x3/2(64->128, zero pad 1) IN ReLU     Conv3x3/2(128->256, zero pad 1) IN ReLU
    9 x ResnetBlock(256): x + [ReflectionPad(1) Conv3x3 IN ReLU ReflectionPad(1) Conv3x3 IN]
    ConvT3x3/2(256->128, pad 1, output_padding 1) IN ReLU   ConvT3x3/2(128->64, ...) IN ReLU
    ReflectionPad(3) Conv7x7(64->3) Tanh

IN is ``nn.InstanceNorm2d(C, affine=True)`` (eps 1e-5, no running statistics, so train
and eval modes agree). Parameter names equal the file's (``model.<index>...``, 94 tensors,
11,388,675 parameters), so the released state dict loads with no renaming.

vintagify's pipeline (``preprocess.py`` and ``inference.py``), reproduced by
:func:`vintagify_view` and :meth:`VintageCycleGAN.forward`:

1. ``transforms.Resize(image_size + 30)``: the shorter side to 542 px (``image_size``
   512 by default), bilinear with antialiasing (PIL, on uint8);
2. ``transforms.CenterCrop(512)``;
3. ``ToTensor`` then ``Normalize(0.5, 0.5)``: RGB in [-1, 1];
4. the generator; its tanh output is mapped back with ``(y + 1) / 2``.

vintagify refuses images under 500 px on either side; the network itself is fully
convolutional.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models._strict import load_strict, read_state_dict
from shield.adversarial.models.package_files import pypi_file

__all__ = [
    "VintageCycleGAN",
    "load_vintage_cyclegan",
    "vintagify_view",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
    "IMAGE_SIZE",
    "MIN_SIDE",
    "PARAMETERS",
]

log = logging.getLogger(__name__)

#: pip requirement that ships the weights.
REQUIREMENT = "vintagify==0.1.2"
#: The weights file inside the installed ``vintagify`` package.
WEIGHTS_FILE = "resources/G_A2B_epoch33.pth"
#: Where the weights come from.
SOURCE = f"{REQUIREMENT}: vintagify/{WEIGHTS_FILE}"
#: Licence of the package and its weights.
LICENSE = "MIT"
#: SHA-256 of ``G_A2B_epoch33.pth`` as installed from the vintagify 0.1.2 wheel.
SHA256 = "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"
#: Size of that file in bytes.
SIZE_BYTES = 45_588_424
#: Side of the square crop vintagify feeds the generator (its ``image_size`` default).
IMAGE_SIZE = 512
#: vintagify resizes the shorter side to ``image_size + RESIZE_MARGIN`` before cropping.
RESIZE_MARGIN = 30
#: Trainable parameters of the released generator.
PARAMETERS = 11_388_675
#: The two stride-2 stages need sides divisible by 4 to give back the input size.
_MULTIPLE = 4
#: Smallest side in pixels: the reflection paddings need a few pixels at the 1/4 scale.
MIN_SIDE = 8


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class _ResnetBlock(nn.Module):
    """``x + block(x)``, block = (reflect pad 1, conv 3x3, IN, ReLU, reflect pad 1, conv 3x3, IN)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


def _layers(ngf: int = 64, n_blocks: int = 9) -> list[nn.Module]:
    """The generator's layers in file order (their indices are the state-dict names)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), _norm(ngf), nn.ReLU()]
    for c in (ngf, 2 * ngf):
        layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), _norm(2 * c), nn.ReLU()]
    layers += [_ResnetBlock(4 * ngf) for _ in range(n_blocks)]
    for c in (4 * ngf, 2 * ngf):
        layers += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), _norm(c // 2), nn.ReLU()]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
    return layers


class VintageCycleGAN(nn.Module):
    """vintagify's CycleGAN generator (modern photo -> vintage photo), role: generator.

    ``forward(x)``: x is (B, 3, H, W) float RGB in [0, 1], H and W at least
    :data:`MIN_SIDE`; returns the translated image,
    (B, 3, H, W) in [0, 1]. The [-1, 1] normalisation and its inverse happen inside.
    vintagify always feeds 512 x 512 crops (see :func:`vintagify_view`). Sides that are
    not multiples of 4 are reflection-padded at the bottom/right to the next multiple
    and the output cropped back (the reference network would return a larger image);
    for multiples of 4 the result is exactly vintagify's network.

    Raises ValueError for another shape or a smaller image.
    Built with random weights; :func:`load_vintage_cyclegan` fills in the released ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(*_layers())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2], x.shape[3]) < MIN_SIDE:
            raise ValueError(f"x: expected (B, 3, H, W) with H, W >= {MIN_SIDE}, got {tuple(x.shape)}")
        h, w = x.shape[2], x.shape[3]
        ph, pw = (-h) % _MULTIPLE, (-w) % _MULTIPLE
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        y = self.model(x * 2.0 - 1.0)
        return (y[:, :, :h, :w] + 1.0) / 2.0


def vintagify_view(image: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """vintagify's ``preprocess`` geometry, differentiable: resize then centre crop.

    The shorter side goes to ``size + 30`` px (the longer to ``int((size + 30) * long /
    short)``, as torchvision's ``Resize(int)``) with bilinear antialiased interpolation,
    then the centre ``size`` x ``size`` square is cut (torchvision ``CenterCrop``
    offsets, ``round((side - size) / 2)``). vintagify does this on a PIL uint8 image;
    this float version differs from it by PIL's rounding to 8 bits (measured in
    ``bench/ports/generators.py``).

    Args:
        image: (B, 3, H, W) RGB in [0, 1].
        size: crop side in pixels (vintagify's ``image_size``, default 512).

    Returns:
        (B, 3, size, size) in [0, 1], ready for :meth:`VintageCycleGAN.forward`.
    """
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image: expected (B, 3, H, W), got {tuple(image.shape)}")
    if size < 1:
        raise ValueError(f"size: expected a positive side in pixels, got {size}")
    h, w = image.shape[2], image.shape[3]
    short = size + RESIZE_MARGIN
    if h <= w:
        nh, nw = short, int(short * w / h)
    else:
        nh, nw = int(short * h / w), short
    resized = F.interpolate(image, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return resized[:, :, top : top + size, left : left + size]


def load_vintage_cyclegan(device: torch.device | str = "cpu", *, path: Path | str | None = None) -> VintageCycleGAN:
    """The released vintagify generator, in eval mode with frozen weights, on ``device``.

    Args:
        device: torch device for the returned module.
        path: a ``G_A2B_epoch33.pth`` state dict; default the one inside the installed
            vintagify package (read with ``weights_only=True``, nothing imported from it).

    Raises:
        PackageMissingError: vintagify is not installed (path not given).
        CheckpointReadError: the file is missing, unreadable or not a mapping of tensors.
        LayoutError: a tensor is missing, unexpected or of the wrong shape (named).
    """
    if path is None:
        path = pypi_file("vintagify", WEIGHTS_FILE, REQUIREMENT)
    model = VintageCycleGAN()
    load_strict(model, read_state_dict(path), "vintagify CycleGAN generator")
    model.eval().requires_grad_(False)
    log.debug("loaded vintagify CycleGAN generator from %s", path)
    return model.to(device)
