"""The recipes: protect, verify, audit. Each is a chain of plain calls into the stages.

protect:  load -> find faces -> adversarial perturbation -> fragile watermark -> C2PA sign -> ledger anchor
verify:   load -> C2PA read -> watermark check/extract -> ledger lookup -> verdict + report
"""

from shield.pipeline.protect import ProtectOptions, ProtectOutcome, protect_files
from shield.pipeline.verify import verify_file

__all__ = ["ProtectOptions", "ProtectOutcome", "protect_files", "verify_file"]
