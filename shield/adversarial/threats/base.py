"""The threat-model protocol: what one attacked (or measured) network must provide.

A threat model is a plug-in (one file under ``shield.adversarial.threats``, one entry
in the model zoo's catalogue). Once loaded it is a :class:`Target`, which gives:

- its ``name`` and :class:`Role`, and whether its weights were trained by others on
  real data (``pretrained``);
- :meth:`Target.view`: the aligned crop of a face (or of the whole frame) it consumes,
  as a :class:`~shield.adversarial.face_views.View` (crop rule and resolution; the
  network normalises its input itself);
- :meth:`Target.terms`: its loss terms for the attack (larger = more broken);
- :meth:`Target.check`: its own break test, comparing what it makes of the protected
  view with what it makes of the clean one (:class:`Verdict`).

The break tests per role (issue "Protection that breaks real deepfake pipelines"):

- detector: broken when no detection at the default threshold overlaps the clean
  photo's face with IoU >= 0.5 (:data:`DETECTOR_IOU`);
- landmarks: broken when the mean landmark error exceeds 0.10 of the clean inter-ocular
  distance (:data:`LANDMARK_NME`);
- identity: broken when the embedding distance exceeds the encoder's own same-person
  threshold;
- generator, reenactment, swap: broken when the output MSE on [-1,1] is >= 0.05
  (Ruiz et al. 2020; :data:`~shield.adversarial.metrics.DISRUPTION_THRESHOLD`), for
  reenactment and swap on at least half of the held-out trials.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from shield.adversarial.attacks.losses import CropFn, LossTerm
from shield.adversarial.face_views import FaceGeometry, View

__all__ = ["Role", "Verdict", "Target", "AttackOptions", "DETECTOR_IOU", "LANDMARK_NME"]

#: A detection matches the clean face when their IoU is at least this.
DETECTOR_IOU = 0.5
#: Landmarks are broken when their mean error exceeds this fraction of the inter-ocular distance.
LANDMARK_NME = 0.10


class Role(enum.Enum):
    """The stage of a deepfake pipeline a network plays."""

    DETECTOR = "detector"
    LANDMARKS = "landmarks"
    IDENTITY = "identity"
    GENERATOR = "generator"
    REENACTMENT = "reenactment"
    SWAP = "swap"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one break test on one face.

    Attributes:
        broken: whether the stage broke; None when the test does not apply (the stage
            already fails on the clean photo, e.g. the detector misses the clean face).
        measure: the measured quantity (IoU, NME, distance, MSE or broken fraction).
        threshold: the value ``measure`` is compared with.
        what: what ``measure`` is, in words.
        trials: how many trials ``measure`` summarises (held-out motions, identities).
    """

    broken: bool | None
    measure: float
    threshold: float
    what: str
    trials: int = 1


@dataclass(frozen=True)
class AttackOptions:
    """Settings a plug-in's loss terms take from the preset.

    Attributes:
        motions: random driving motions in a reenactment model's bank.
        motions_per_step: motions (or identities) evaluated per attack step.
        output_only: only the generator-output distortion (the Ruiz et al. 2020
            baseline), no auxiliary term (keypoints, latents).
    """

    motions: int = 8
    motions_per_step: int = 2
    output_only: bool = False


class Target(abc.ABC):
    """A loaded threat model (see the module docstring).

    Subclasses set ``name``, ``role`` and ``pretrained`` and implement the abstract
    methods; :meth:`load` is their constructor from the installed weights.
    """

    name: str
    role: Role
    pretrained: bool = True

    @classmethod
    @abc.abstractmethod
    def load(cls, device: torch.device | str = "cpu") -> Target:
        """The plug-in with its network(s) loaded, frozen and in eval mode on ``device``.

        Raises:
            ModelError: the weights are missing, corrupt or of the wrong layout.
        """

    @abc.abstractmethod
    def networks(self) -> Sequence[nn.Module]:
        """Every network the plug-in runs."""

    @abc.abstractmethod
    def view(self, face: FaceGeometry | None, width: int, height: int) -> View | None:
        """The crop this network consumes, in photo pixels.

        Args:
            face: the face (None: protect the whole ``width`` x ``height`` frame).

        Returns:
            The view, or None when the network has nothing to consume (e.g. an identity
            encoder on a frame without a face).
        """

    def alignments(self, face: FaceGeometry | None, width: int, height: int) -> list[View]:
        """Other crops of the same face the network may be fed by other tools (attacked too, not checked).

        Tools align a face differently (dlib's chip, the ArcFace template, a padded box);
        an identity encoder attacked on one alignment transfers poorly to another, so a
        plug-in can list the others here. Default: none.
        """
        return []

    @abc.abstractmethod
    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        """The loss terms of the attack on ``crop(x)``, weighted by ``weight`` in total."""

    @abc.abstractmethod
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        """The break test: ``crop(protected)`` against ``crop(clean)`` (both (1,3,h,w) in [0,1])."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, role={self.role.value})"
