"""Lab code of shield: what made the shipped surrogates and measured them; never shipped in the wheel (see lab/README.md)."""
