"""Robust soft-binding mark (placeholder docstring, written at the end)."""

from shield.softbinding.embed import DEFAULT_PSNR, embed
from shield.softbinding.errors import SoftBindingError, SoftBindingInputError
from shield.softbinding.extract import extract
from shield.softbinding.types import Extraction

NAME = "shield.robust"
VERSION = 1

__all__ = ["NAME", "VERSION", "DEFAULT_PSNR", "embed", "extract", "Extraction", "SoftBindingError", "SoftBindingInputError"]
