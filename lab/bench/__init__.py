"""Surrogate experiments: quality and learning curves of the surrogates, the white-box protection ceiling."""
