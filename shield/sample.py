"""Write the sample portrait used by `make run`: skimage.data.astronaut() (public domain)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shield.errors import ConfigError


def write_sample(path: Path) -> Path:
    """Write the 512x512 RGB astronaut portrait as PNG at ``path`` (atomically); return ``path``.

    Raises:
        ConfigError: scikit-image (the ``bench`` extra) is not installed.
    """
    try:
        from skimage import data
    except ImportError as exc:
        raise ConfigError("the sample portrait comes from scikit-image, which is not installed", fix="pip install 'shield[bench]'") from exc

    rgb = np.asarray(data.astronaut(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(rgb).save(tmp, format="PNG")
    tmp.replace(path)
    return path


if __name__ == "__main__":
    print(write_sample(Path(sys.argv[1] if len(sys.argv) > 1 else "astronaut.png")))
