"""Training of the surrogate weights shipped with shield (seeded, logged, resumable).

Run ``python -m lab.surrogates.train.fomm --seed N --out DIR`` for a fomm-mini model.
"""

from lab.surrogates.train.common import (
    KEEP,
    CheckpointStore,
    LossLog,
    RunRecord,
    StopFlag,
    restore_rng_state,
    rng_state,
    seed_everything,
)

__all__ = [
    "KEEP",
    "CheckpointStore",
    "LossLog",
    "RunRecord",
    "StopFlag",
    "restore_rng_state",
    "rng_state",
    "seed_everything",
]
