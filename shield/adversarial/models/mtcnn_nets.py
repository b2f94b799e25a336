"""The three MTCNN networks (P-Net, R-Net, O-Net) as shipped in facenet-pytorch 2.6.0.

Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded Convolutional
Networks" (IEEE SPL 2016), section II-A and figure 2. The layer names and layouts are
facenet-pytorch's (``facenet_pytorch/models/mtcnn.py``), so its state dicts
(``facenet_pytorch/data/{pnet,rnet,onet}.pt``) load name for name. Two details of that
implementation are reproduced because the weights depend on them:

- every max pooling uses ``ceil_mode=True`` (Caffe's pooling arithmetic);
- R-Net and O-Net flatten their last feature map in (W, H, C) order (``permute(0, 3, 2, 1)``),
  the order of the original Caffe/TensorFlow dense weights.

All three take images already normalised to ``(pixel_0_255 - 127.5) / 128`` (the cascade
in :mod:`shield.adversarial.models.mtcnn` does that) and return raw regressions and
softmax face probabilities; channel 1 of the probabilities is "face". With
``logits=True`` they return the two class scores before the softmax instead: a confident
face's probability rounds to 1 in float32, where its gradient vanishes, while the score
difference keeps it.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PNet", "RNet", "ONet"]


class PNet(nn.Module):
    """Proposal network: fully convolutional, one 12x12 window per output cell (stride 2).

    ``forward(x)``: x (B, 3, H, W) normalised, H, W >= 12. Returns ``(reg, prob)``:
    reg (B, 4, h, w) box offsets in units of the window side, prob (B, 2, h, w) softmax
    with h = ceil((H - 2) / 2) - 4 (likewise w).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor, logits: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), _classes(self.conv4_1(x), logits)


class RNet(nn.Module):
    """Refinement network on 24x24 crops.

    ``forward(x)``: x (B, 3, 24, 24) normalised. Returns ``(reg, prob)``: reg (B, 4) box
    offsets in units of the crop side, prob (B, 2) softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor, logits: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), _classes(self.dense5_1(x), logits)


class ONet(nn.Module):
    """Output network on 48x48 crops: face probability, box offsets and five landmarks.

    ``forward(x)``: x (B, 3, 48, 48) normalised. Returns ``(reg, points, prob)``: reg
    (B, 4) box offsets in units of the crop side; points (B, 10) = five x then five y,
    as fractions of the crop side; prob (B, 2) softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor, logits: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), _classes(self.dense6_1(x), logits)


def _classes(raw: torch.Tensor, logits: bool) -> torch.Tensor:
    """The class channel: softmax probabilities, or the raw class scores when ``logits``."""
    return raw if logits else torch.softmax(raw, dim=1)
