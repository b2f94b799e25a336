"""Threat models as plug-ins: one file per network, one entry in the model zoo's catalogue.

:class:`Target` is the protocol (name, role, ``load``, ``view``, ``terms``, ``check``);
:mod:`.roles` holds the templates shared by every detector, landmark network, identity
encoder and generator; :mod:`.registry` finds and loads plug-ins.
"""

from shield.adversarial.threats.base import DETECTOR_IOU, LANDMARK_NME, AttackOptions, Role, Target, Verdict
from shield.adversarial.threats.registry import (
    UnknownThreatModelError,
    load_ensemble,
    load_targets,
    names,
    plugin,
    register,
    role_of,
    unregister,
)

__all__ = [
    "Role",
    "Target",
    "Verdict",
    "AttackOptions",
    "DETECTOR_IOU",
    "LANDMARK_NME",
    "UnknownThreatModelError",
    "register",
    "unregister",
    "plugin",
    "names",
    "role_of",
    "load_targets",
    "load_ensemble",
]
