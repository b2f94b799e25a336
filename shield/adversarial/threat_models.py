"""The deepfake models a protection run attacks (white-box) and how to load them.

By default these are the project's shipped surrogates: ``fomm-mini-a``
(reenactment), ``faceswap-ae`` (autoencoder face swap) and the dlib face descriptor
port (identity). ``fomm-mini-b`` is never attacked: it measures transfer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from shield.adversarial.models.autoencoder import FaceSwapAE
from shield.adversarial.models.fomm import FOMM

__all__ = ["ThreatModels", "load_threat_models", "ATTACKED_FOMM", "TRANSFER_FOMM", "FACESWAP", "IDENTITY"]

log = logging.getLogger(__name__)

ATTACKED_FOMM = "fomm-mini-a"
TRANSFER_FOMM = "fomm-mini-b"
FACESWAP = "faceswap-ae"
IDENTITY = "dlib-resnet"


@dataclass(frozen=True)
class ThreatModels:
    """Networks attacked by the protection; any may be None (its loss terms are skipped).

    Attributes:
        fomm: a First Order Motion Model (``keypoints``, ``generate``, ``resolution``).
        faceswap: a face-swap network with ``swap(face, identity)``, ``identities``, ``resolution``.
        identity: a face embedder of 150 px dlib chips (B,3,150,150) -> (B,D).
    """

    fomm: FOMM | None
    faceswap: FaceSwapAE | None
    identity: nn.Module | None
    fomm_name: str = ATTACKED_FOMM
    faceswap_name: str = FACESWAP
    identity_name: str = IDENTITY

    def names(self) -> list[str]:
        """Names of the models present (recorded in the protection parameters)."""
        pairs = ((self.fomm, self.fomm_name), (self.faceswap, self.faceswap_name), (self.identity, self.identity_name))
        return [name for model, name in pairs if model is not None]


def load_faceswap(device: torch.device | str = "cpu") -> FaceSwapAE:
    """The shipped ``faceswap-ae`` surrogate (frozen, eval mode)."""
    from shield.adversarial.models.autoencoder import load_faceswap_ae

    return load_faceswap_ae(device).eval()


def load_threat_models(device: torch.device | str = "cpu") -> ThreatModels:
    """The shipped surrogates on ``device``.

    Raises:
        ModelError: a weights file is missing or corrupt.
    """
    from shield.adversarial.models.dlib_resnet import load_dlib_descriptor
    from shield.adversarial.models.fomm import load_fomm_mini

    return ThreatModels(
        fomm=load_fomm_mini(ATTACKED_FOMM, device),
        faceswap=load_faceswap(device),
        identity=load_dlib_descriptor(device).eval(),
    )
