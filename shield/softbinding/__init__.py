"""Robust soft-binding mark: the asset id, readable after re-encoding, resizing and cropping.

Scheme ``shield.sstile`` version 1 (expert layer; the recipes are ``shield.protect`` /
``shield.verify``), registered as the ``alg`` of the manifest's ``c2pa.soft-binding``
assertion (:data:`ALG`). It is embedded *before* the fragile watermark, which then changes
at most the least significant bit and costs the mark nothing measurable.

Design (keyed spread spectrum in a canonical frame, with self-synchronisation):

* **Canonical frame.** The luma is considered at a scale where the shorter side is 256
  pixels. The mark is a pattern defined on that frame and resampled (bilinear) to the
  photo's size, so any uniformly resized copy has the same canonical image: rescaling
  needs no search. At 12 MP one canonical pixel is a smooth ~12 px blob, which JPEG keeps.
* **Tile.** A 64x64 tile of +-1 chips (from SHAKE-256 of the key) repeats over the frame.
  A quarter of its positions are *sync* chips (known sign); each of the others carries
  one of 256 coded bits, 12 positions per bit per tile, and about 20 tiles per photo.
* **Code.** The 16-byte asset id is Reed-Solomon coded (``reedsolo``, 16 parity bytes,
  32 bytes = 256 bits) and decoded with up to 6 erasures of the least reliable bytes
  (GMD): a random word passes with probability below 1e-7 per try (at most a few dozen
  tries per image); a codeword is also rejected if over 28% of the read bits disagree.
* **Embedding strength.** A perceptual mask (local activity, 0.5x..1.5x of the median)
  and improved spread spectrum: the embedder measures how much the photo itself
  correlates with each bit's chips (and each sync group's) and sets per-group amplitudes
  that bring every group to the same margin, within a fixed energy: PSNR 45.3 dB by
  default, the same change on R, G and B.
* **Synchronisation.** A crop only shifts the tile's phase and, when it shortens the
  shorter side, stretches its period by 1/kept-share. The extractor measures the period
  from the whitened image's autocorrelation, scans finely around it (0.15% steps), folds
  the frame modulo the tile and finds the phase by FFT correlation with the sync chips.

Measured (bench/softbinding.py over the 85 shared photos, bench/results/softbinding.json):
PSNR 45.3 dB (44.8 with the fragile mark on top); 12 MP embed 0.85 s, read 0.40 s
(invisible-watermark dwtDct in the same run: 7.7 s, 41.4 dB). The mark needs pixels. From
1000 px on the shorter side every copy was read: JPEG 95..30, resizes 0.5x..2x, 10% crops,
resize-then-JPEG-75 chains. At 600-1000 px: JPEG 50 100%, JPEG 30 96%, 0.5x-then-JPEG-75
82%. Under 600 px: JPEG 75 96%, JPEG 50 83%, JPEG 30 39%, and a 0.5x resize followed by
JPEG 75 is never read; the fingerprint (:mod:`shield.fingerprint`) is the route there.
No false reads: 0 of 1108 never-marked images, and no wrong asset id in 1445 reads.

Keys and trust: :data:`DEFAULT_KEY` is public, so that anyone can read the asset id of a
stripped copy and look it up. Anyone can therefore also read, strip or copy the mark onto
another picture: the mark is a pointer to a record, never evidence. Verification must
compare the copy with the record (its fingerprint) before it reports a match.

Pure: arrays and bytes in, typed results out; numpy, Pillow and reedsolo only.
"""

from shield.softbinding.codec import ID_BYTES
from shield.softbinding.embed import DEFAULT_PSNR, embed
from shield.softbinding.errors import SoftBindingError, SoftBindingInputError
from shield.softbinding.extract import extract
from shield.softbinding.types import Extraction

#: Algorithm name and version, and the ``alg`` string of the c2pa.soft-binding assertion.
NAME = "shield.sstile"
VERSION = 1
ALG = f"{NAME}.v{VERSION}"
#: The public spreading key every shield installation uses (see "Keys and trust" above).
DEFAULT_KEY = b"shield.softbinding.public-key.v1"

__all__ = [
    "NAME",
    "VERSION",
    "ALG",
    "DEFAULT_KEY",
    "DEFAULT_PSNR",
    "ID_BYTES",
    "Extraction",
    "SoftBindingError",
    "SoftBindingInputError",
    "embed",
    "extract",
]
