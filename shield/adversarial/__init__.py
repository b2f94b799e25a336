"""Adversarial protection: deepfake models, attacks and their training."""

__all__: list[str] = []
