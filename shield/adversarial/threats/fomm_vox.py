"""Plug-in ``fomm-vox-256``: the official First Order Motion Model, once a user imported it.

Attacked on its own 256 px square crop, one motion per step (a 256 px generator pass
costs about 16x a 64 px one); break test as the surrogates' (``fomm_mini``).
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.fomm_mini import FommTarget

__all__ = ["FommVox", "NAME"]

NAME = "fomm-vox-256"


class FommVox(FommTarget):
    name = NAME
    max_per_step = 1

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FommVox:
        """The imported checkpoint, with the configuration it was imported with.

        Raises:
            ModelNotImportedError: not imported (the fix gives the import command).
            ModelError: the import record holds an invalid configuration, or the file does not match it.
        """
        from shield.adversarial import zoo
        from shield.adversarial.models.fomm import VOX_256, FommConfig, load_official_checkpoint
        from shield.errors import ConfigError, ModelError

        path = zoo.resolve(NAME)
        record = zoo.imported(NAME)
        try:
            config = FommConfig.from_dict(dict(record.config)) if record is not None and record.config else VOX_256
        except ConfigError as exc:
            raise ModelError(
                f"the import record of {NAME} holds an invalid configuration: {exc}",
                fix=f"import it again with `shield models import {NAME} FILE --replace`",
            ) from exc
        return cls(load_official_checkpoint(path, config, device))
