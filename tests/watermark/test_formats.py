"""Only lossless output formats are accepted."""

from __future__ import annotations

import io

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from shield.errors import WatermarkError
from shield.watermark import LossyFormatError, WatermarkStatus, require_lossless, verify


@pytest.mark.parametrize("name", ["png", ".PNG", "WebP", "tiff", "tif"])
def test_lossless_round_trip(name: str, marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    options = require_lossless(name)
    fmt = {"tif": "TIFF"}.get(name.lower().lstrip("."), name.lstrip(".").upper())
    buf = io.BytesIO()
    Image.fromarray(marked).save(buf, format=fmt, **options)
    back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert verify(back, key.public_key()).status is WatermarkStatus.INTACT


@pytest.mark.parametrize("name", ["jpeg", "JPG", ".jpg", "heic", "avif", "gif", "bmpx"])
def test_lossy_refused(name: str) -> None:
    with pytest.raises(LossyFormatError) as info:
        require_lossless(name)
    assert isinstance(info.value, WatermarkError)
    assert info.value.fix and "PNG" in info.value.fix


def test_type_checked() -> None:
    with pytest.raises(TypeError, match="format_name"):
        require_lossless(None)  # type: ignore[arg-type]
