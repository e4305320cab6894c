"""Seed sweep of the checked cells and verdicts: run chapters at a profile with several seeds and report every
checked line and every verdict that changes with the seed (a checked line that changes is not a check).

    python tools/seeds.py OUT_DIR --profile ci --seeds 0 1 2 [NB.ipynb ...]   # notebooks anywhere on the line
    python tools/seeds.py record book/data/scales.json OUT_DIR/*.ipynb   # keep their verdicts for the scales page

Each run uses its own empty run cache. Writes OUT_DIR/seeds.md (the report) and the executed notebooks. `record`
merges the verdict records of executed notebooks into the file the book's "claims across scales" page reads
(book/_ext/scales.py), replacing earlier records of the same chapter, profile and seed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from nb import platform  # noqa: E402

MIME = "application/vnd.bnbook.verdicts+json"
CHECK_TAG = "nbval-check-output"


def run(nb: Path, seed: int, profile: str, out: Path) -> Path:
    """Execute `nb` at `profile` with `seed` into out/<name>_seed<seed>.ipynb with an empty run cache."""
    dest = out / f"{nb.stem}_seed{seed}.ipynb"
    cache = out / "cache" / f"{nb.stem}_{seed}"
    cache.mkdir(parents=True, exist_ok=True)
    for arrays in Path(os.environ.get("BNBOOK_CACHE", Path.home() / ".cache" / "bnbook")).glob("cifar10-*.npz"):
        if not (cache / arrays.name).exists():
            (cache / arrays.name).symlink_to(arrays)  # decoded images shared, runs not
    env = {**os.environ, "BNBOOK_STATIC": "1", "TQDM_DISABLE": "1", "BNBOOK_CACHE": str(cache),
           "BNBOOK_THREADS": "1", "BNBOOK_PROFILE": profile}
    subprocess.run([sys.executable, "-m", "papermill", str(nb), str(dest), "-p", "seed", str(seed), "-k", "python3",
                    "--cwd", str(nb.parent), "--no-progress-bar"], env=env, check=True, capture_output=True)
    doc = json.loads(dest.read_text())  # the copy carries the committed run's metadata: name this run's platform
    doc["metadata"].setdefault("bnbook", {})["platform"] = platform()
    dest.write_text(json.dumps(doc, indent=1))
    return dest


def checked_lines(path: Path) -> list[str]:
    """The printed text of each checked cell, its stream outputs joined (as nbval coalesces them: how a kernel
    splits one print into chunks varies from run to run)."""
    cells = json.loads(path.read_text())["cells"]
    return ["".join("".join(o.get("text", "")) for o in c.get("outputs", []) if o.get("output_type") == "stream")
            for c in cells if CHECK_TAG in c.get("metadata", {}).get("tags", [])]


def verdicts(path: Path) -> dict[str, str]:
    cells = json.loads(path.read_text())["cells"]
    return {v.get("claim_id") or v["claim"]: v["reproduced"] for c in cells for o in c.get("outputs", [])
            for v in o.get("data", {}).get(MIME, {}).get("verdicts", [])}


def report(results: dict[str, dict[int, Path]], profile: str) -> str:
    rows = [f"# Seed sweep at profile `{profile}`", ""]
    for name, by_seed in results.items():
        seeds = sorted(by_seed)
        lines = {s: checked_lines(p) for s, p in by_seed.items()}
        changed = [i for i in range(len(lines[seeds[0]])) if len({tuple(lines[s][i:i + 1]) for s in seeds}) > 1]
        rows.append(f"## {name}: seeds {seeds}")
        rows.append(f"- checked cells: {len(lines[seeds[0]])}; changed with the seed: {len(changed)}")
        for i in changed:
            for s in seeds:
                rows.append(f"  - cell {i}, seed {s}: `{lines[s][i].strip()[:300]}`")
        vs = {s: verdicts(p) for s, p in by_seed.items()}
        rows.append("- verdicts: " + "; ".join(f"{cid}: " + "/".join(vs[s].get(cid, "—") for s in seeds)
                                                for cid in vs[seeds[0]]))
        rows.append("")
    return "\n".join(rows)


def record(store: Path, notebooks: list[Path]) -> list[dict]:
    """Merge the verdict records of executed `notebooks` into `store` (JSON); returns the stored records."""
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    from scales import records_of

    old = json.loads(store.read_text()) if store.is_file() else []
    new = [r for r in (records_of(nb) for nb in notebooks) if r["claims"]]
    keys = {(r["chapter"], r["profile"], r["seed"]) for r in new}
    merged = [r for r in old if (r["chapter"], r["profile"], r["seed"]) not in keys] + new
    merged.sort(key=lambda r: (r["chapter"], str(r["profile"]), r["seed"] if r["seed"] is not None else -1))
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text(json.dumps(merged, indent=1) + "\n")
    return merged


def parse(argv: list[str]) -> argparse.Namespace:
    """The sweep's options. Notebooks (*.ipynb) may stand anywhere on the line, also after `--seeds 0 1 2`, whose
    list would otherwise swallow them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--profile", default="ci", choices=["ci", "cpu", "long", "gpu"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args([x for x in argv if not x.endswith(".ipynb")])
    a.notebooks = [x for x in argv if x.endswith(".ipynb")]
    return a


def main(argv: list[str]) -> int:
    if argv[:1] == ["record"]:
        if len(argv) < 3:
            raise SystemExit("usage: python tools/seeds.py record STORE.json NOTEBOOK.ipynb ...")
        print(f"{len(record(Path(argv[1]), [Path(a) for a in argv[2:]]))} records in {argv[1]}")
        return 0
    a = parse(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    nbs = [Path(n).resolve() for n in a.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    jobs = [(nb, s) for nb in nbs for s in a.seeds]
    with ThreadPoolExecutor(a.jobs) as pool:
        paths = list(pool.map(lambda j: run(j[0], j[1], a.profile, out), jobs))
    results: dict[str, dict[int, Path]] = {}
    for (nb, s), p in zip(jobs, paths):
        results.setdefault(nb.stem, {})[s] = p
    text = report(results, a.profile)
    (out / "seeds.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
