"""Surrogate training (stopped): data loaders and training loops of the shipped ``fomm-mini`` and ``faceswap-ae`` weights."""
