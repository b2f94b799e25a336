"""shield: protect photos against deepfakes and prove where they came from.

Recipes that need no decisions live here (``protect``, ``verify``, ``audit``); the
expert layer (raw attacks, bit-level watermark, ledger client) lives in the stage
subpackages and says so.
"""

__version__ = "0.1.0"
