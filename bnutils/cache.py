"""Resumable on-disk results: each expensive run is stored as JSON under a hash of its full configuration.

Writes are atomic (a temporary file renamed into place), so a killed run leaves either the whole file or
nothing; a corrupted file is reported and recomputed. Keys include a fingerprint of the bnutils source,
so a change to the library never serves a stale result. Only JSON (and NPZ for arrays) is ever read back.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

CACHE_ENV = "BNBOOK_CACHE"


def cache_dir() -> Path:
    """$BNBOOK_CACHE, else ~/.cache/bnbook (created on first use)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    d = Path(env).expanduser() if env else Path.home() / ".cache" / "bnbook"
    d.mkdir(parents=True, exist_ok=True)
    return d


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Call write(file) on a temporary file in path's folder, then rename it onto path (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@functools.lru_cache(maxsize=1)
def source_fingerprint() -> str:
    """sha256 over the bnutils source files: changes whenever the library's code does."""
    h = hashlib.sha256()
    root = Path(__file__).parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def config_key(config: dict[str, Any]) -> str:
    """A stable hash of a JSON-able configuration plus the bnutils source fingerprint."""
    blob = json.dumps(config, sort_keys=True, default=str) + source_fingerprint()
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached(config: dict[str, Any], compute: Callable[[], dict[str, Any]], *, namespace: str = "runs",
           enabled: bool = True) -> dict[str, Any]:
    """Return the stored result for `config`, or compute(), store and return it. Results must be JSON-able dicts."""
    if not enabled:
        return compute()
    path = cache_dir() / namespace / f"{config_key(config)}.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
            if stored.get("config") == json.loads(json.dumps(config, default=str)) and "result" in stored:
                return stored["result"]
            raise ValueError("configuration mismatch")
        except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as e:
            warnings.warn(f"cache file {path} is corrupted ({e}): recomputing it")
    result = compute()
    text = json.dumps({"config": config, "result": result}, default=str)
    atomic_write(path, lambda f: f.write(text), mode="w")
    return result


def sweep(configs: Iterable[dict[str, Any]], run: Callable[[dict[str, Any]], dict[str, Any]], *,
          namespace: str = "runs", enabled: bool = True) -> list[dict[str, Any]]:
    """Run each configuration through the cache: an interrupted sweep resumes where it stopped."""
    return [cached(c, lambda c=c: run(c), namespace=namespace, enabled=enabled) for c in configs]
