"""Resumable on-disk results: each expensive run is stored as JSON under a key of everything it depends on.

`@cached_run(namespace)` keys a run on its function's bound arguments (defaults applied), a fingerprint of
every dataset or tensor argument (its identity or content), the identity of the CIFAR-10 source, a
fingerprint of the code the run executes (its module and the bnutils modules it imports, figures and prose
excluded) and the platform (torch version, the CPU kernels it uses, whether amp means bf16 on this CPU):
changing any of them can never serve another run's result. Writes are atomic (a killed run leaves
the whole file or nothing); a corrupted file is reported and recomputed; a cache folder that cannot be written
warns once and the result is still returned. Only JSON (and NPZ for arrays) is ever read back.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

CACHE_ENV = "BNBOOK_CACHE"


def cache_dir() -> Path:
    """$BNBOOK_CACHE, else ~/.cache/bnbook (created on first use; a folder that cannot be created is only warned
    about, here and at the first write: reads then miss and results are still returned)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    d = Path(env).expanduser() if env else Path.home() / ".cache" / "bnbook"
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _warn_unwritable(d, e)
    return d


_WARNED: set[str] = set()


def _warn_unwritable(folder: Path, error: BaseException) -> None:
    """Warn once per folder that results cannot be stored there (they are still returned)."""
    key = str(folder)
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(f"cannot write to the cache folder {folder} ({error}): results are computed and returned "
                      f"but not stored; point {CACHE_ENV} at a writable folder to keep them", stacklevel=3)


def try_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> bool:
    """atomic_write, except that a read-only, full or missing cache folder warns once instead of raising:
    the caller keeps the result it computed. True when the file was written."""
    try:
        atomic_write(path, write, mode)
        return True
    except OSError as e:
        _warn_unwritable(Path(path).parent, e)
        return False


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


# Modules that draw or write about results: never part of a run's code fingerprint.
PRESENTATION = ("bnutils", "bnutils.plots", "bnutils.figures", "bnutils.report", "bnutils.interactive",
                "bnutils.claims")
_ROOT = Path(__file__).parent


def _module_file(name: str) -> Path | None:
    """The source file of module `name` (a package's __init__.py): bnutils' from its folder, any other (a
    notebook's or a test's) from the module loaded under that name; None if there is none."""
    if name.split(".")[0] != "bnutils":
        f = getattr(sys.modules.get(name), "__file__", None)
        return Path(f) if f and Path(f).is_file() else None
    parts = name.split(".")[1:]
    if not parts:
        return _ROOT / "__init__.py"
    for f in (_ROOT.joinpath(*parts).with_suffix(".py"), _ROOT.joinpath(*parts, "__init__.py")):
        if f.is_file():
            return f
    return None


def _imports(name: str, source: str) -> set[str]:
    """The bnutils modules that module `name` imports anywhere (top level or inside functions)."""
    package = name if _module_file(name).name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and package:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "bnutils":
                continue
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if _module_file(f"{base}.{a.name}"))
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "bnutils")
    return {m for m in out if _module_file(m)}


def _presentation(name: str) -> bool:
    return any(name == p or (p != "bnutils" and name.startswith(p + ".")) for p in PRESENTATION)


def module_closure(roots: Iterable[str], *, presentation: bool = True) -> set[str]:
    """The bnutils modules in `roots` and every bnutils module they import, transitively; with presentation=False
    the figures, plots and prose modules (PRESENTATION) are left out, except a root itself."""
    roots = set(roots)
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        m = todo.pop()
        if m in seen or (not presentation and m not in roots and _presentation(m)) or not _module_file(m):
            continue
        seen.add(m)
        todo.extend(_imports(m, _module_file(m).read_text()))
    return seen


@functools.lru_cache(maxsize=None)
def code_fingerprint(module: str) -> str:
    """sha256 over the source of bnutils module `module` and every bnutils module it imports, transitively,
    leaving out figures, plots and prose: renaming an axis label keeps every cached run."""
    h = hashlib.sha256()
    for m in sorted(module_closure([module], presentation=False) | {module}):
        h.update(m.encode())
        h.update(_module_file(m).read_bytes() if _module_file(m) else b"")
    return h.hexdigest()[:16]


def fingerprint(name: str, value: Any) -> Any:
    """A JSON-able stand-in for an argument of a cached run: the value itself for plain data, an identity or a
    content hash for datasets, tensors and arrays. Anything else is an error naming the argument: a run is
    never keyed on a value the key cannot see."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [fingerprint(name, v) for v in value]
    if isinstance(value, dict):
        return {str(k): fingerprint(f"{name}[{k!r}]", v) for k, v in value.items()}
    if hasattr(value, "cache_key"):  # bnutils.data.Dataset: its source, subset and seed, or its content
        return {"type": type(value).__name__, "key": value.cache_key()}
    if hasattr(value, "detach") and hasattr(value, "dtype"):  # a torch tensor
        t = value.detach().cpu().contiguous()
        return {"tensor": list(t.shape), "dtype": str(t.dtype),
                "sha256": hashlib.sha256(t.view(-1).view(torch_uint8()).numpy().tobytes()).hexdigest()[:24]}
    if hasattr(value, "tobytes") and hasattr(value, "dtype"):  # a numpy array
        return {"array": list(value.shape), "dtype": str(value.dtype),
                "sha256": hashlib.sha256(value.tobytes()).hexdigest()[:24]}
    if type(value).__name__ == "device":
        return str(value)
    raise ValueError(f"{name}: a cached run cannot be keyed on a {type(value).__name__}; pass plain values, "
                     "lists, dicts, tensors or a bnutils.data.Dataset")


def torch_uint8():
    import torch

    return torch.uint8


def config_key(config: dict[str, Any]) -> str:
    """A stable hash of a JSON-able configuration."""
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _path(config: dict[str, Any], namespace: str) -> Path:
    return cache_dir() / namespace / f"{config_key(config)}.json"


def lookup(config: dict[str, Any], *, namespace: str = "runs") -> Any:
    """The stored result for `config`, or None (a corrupted file is reported and treated as missing)."""
    path = _path(config, namespace)
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
        if stored.get("config") == json.loads(json.dumps(config, default=str)) and "result" in stored:
            return stored["result"]
        raise ValueError("configuration mismatch")
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as e:
        warnings.warn(f"cache file {path} is corrupted ({e}): recomputing it")
    return None


def cached(config: dict[str, Any], compute: Callable[[], dict[str, Any]], *, namespace: str = "runs",
           enabled: bool = True) -> dict[str, Any]:
    """Return the stored result for `config`, or compute(), store and return it. Results must be JSON-able dicts."""
    if not enabled:
        return compute()
    stored = lookup(config, namespace=namespace)
    if stored is not None:
        return stored
    text = json.dumps({"config": config, "result": compute()}, default=str)
    try_write(_path(config, namespace), lambda f: f.write(text), mode="w")
    return json.loads(text)["result"]  # what a later call reads back: the first call returns the same


@functools.lru_cache(maxsize=None)
def platform_identity() -> dict[str, Any]:
    """What a run's numbers depend on besides its arguments, data and code: the torch version (its kernels and
    random streams), the CPU kernels torch dispatches to (the vector ISA; AMX, which oneDNN uses for bf16) and
    whether this CPU computes bf16 at all (`train.cpu_bf16`: amp trains in bf16 on the CPU only then). Measured:
    the same chapter on an AVX512-BF16 and on an AMX CPU gives other numbers, so neither serves the other."""
    import torch

    from .train import cpu_bf16

    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability(),
            "amx": bool(amx()) if amx else None, "cpu_bf16": cpu_bf16()}


RUNS: list[Callable[..., Any]] = []  # every function decorated with cached_run (tests key each argument)


def run_key(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Everything a cached run of `fn(*args, **kwargs)` depends on: its bound arguments with defaults applied
    (each fingerprinted), the CIFAR-10 source it would read, the code it runs and the platform it runs on."""
    from .cifar10 import source_identity
    from .profiles import smoke

    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    arguments = {k: v for k, v in bound.arguments.items() if k != "cache"}
    key = {"run": f"{fn.__module__}.{fn.__qualname__}", "code": code_fingerprint(fn.__module__),
           "cifar10_source": source_identity(), "platform": platform_identity(),
           "arguments": {k: fingerprint(k, v) for k, v in arguments.items()}}
    if smoke():  # a capped smoke run is never served as (or from) a real one
        key["smoke"] = vars(smoke())
    return key


def cached_run(namespace: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for an expensive run returning a JSON-able dict: the result is stored under `run_key` and
    served again for the same key. The function must take a `cache: bool = True` argument (False: always
    compute, store nothing). `wrapped.key(*args, **kwargs)` gives the cache key and `wrapped.lookup(...)` the
    stored result or None, without running anything."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.signature(fn).parameters.get("cache") is None:
            raise TypeError(f"{fn.__qualname__} must take a `cache: bool = True` argument to be a cached run")

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            bound = inspect.signature(fn).bind(*args, **kwargs)
            bound.apply_defaults()
            if not bound.arguments["cache"]:
                return fn(*args, **kwargs)
            return cached(run_key(fn, *args, **kwargs), lambda: fn(*args, **kwargs), namespace=namespace)

        wrapped.key = lambda *a, **k: config_key(run_key(fn, *a, **k))
        wrapped.lookup = lambda *a, **k: lookup(run_key(fn, *a, **k), namespace=namespace)
        RUNS.append(wrapped)
        return wrapped
    return decorate
