"""`shield verify` starts fast (issue 19): checking a photo imports neither torch nor scipy
nor web3 (the ledger is read through the light client). Each check runs the command in a
fresh interpreter and lists the heavy modules it left in ``sys.modules``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tests.pipeline.conftest import HAS_ANVIL, make_settings

HEAVY = ("torch", "scipy", "web3", "eth_account", "eth_abi", "cv2", "skimage")
REPO = Path(__file__).resolve().parents[2]
_PROBE = """
import json, sys
from click.testing import CliRunner
from shield.cli import cli
result = CliRunner().invoke(cli, ["verify", "--json", sys.argv[1]])
print(json.dumps({"verdict": json.loads(result.output)["verdict"],
                  "heavy": sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)}))
"""


def _verify_in_fresh_process(photo: Path, env: dict[str, str]) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    out = subprocess.run([sys.executable, "-c", _PROBE, str(photo), json.dumps(HEAVY)], env=base | env, cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True)
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _env(root: Path) -> dict[str, str]:
    cfg = make_settings(root)
    return {"SHIELD_HOME": str(cfg.home), "SHIELD_KEYS_DIR": str(cfg.keys_dir), "SHIELD_NODE_BIN": str(cfg.node_bin),
            "SHIELD_ANVIL_PORT": str(cfg.chain.anvil_port)}


def test_no_provenance_verify_imports_no_heavy_module(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    photo = tmp_path / "plain.png"
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(photo)
    doc = _verify_in_fresh_process(photo, _env(tmp_path))
    assert doc == {"verdict": "no-provenance", "heavy": []}


def test_reencoded_verify_imports_no_heavy_module(published: Any, tmp_path: Path) -> None:
    assert HAS_ANVIL  # the published fixture skips without anvil
    buf = io.BytesIO()
    Image.open(published.outcome.output).convert("RGB").save(buf, format="JPEG", quality=75)
    (tmp_path / "posted.jpg").write_bytes(buf.getvalue())
    cfg = published.settings
    env = {"SHIELD_HOME": str(cfg.home), "SHIELD_KEYS_DIR": str(cfg.keys_dir), "SHIELD_NODE_BIN": str(cfg.node_bin),
           "SHIELD_ANVIL_PORT": str(cfg.chain.anvil_port)}
    doc = _verify_in_fresh_process(tmp_path / "posted.jpg", env)
    assert doc == {"verdict": "re-encoded-match", "heavy": []}
