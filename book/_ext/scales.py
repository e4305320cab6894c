"""Sphinx extension: the "claims across scales" page, from verdict records at every scale the book was run at.

The committed chapters give the `cpu` records of the notebook's own seed (read live, so they cannot go stale).
Every other record (other seeds at `cpu`, the `ci` seed sweep, a `long` run) is in book/data/scales.json, written
by `python tools/seeds.py record` from executed notebooks. For each headline claim the page shows, per scale, the
outcome of each seed set, the effect (median over seed sets) with its spread, and the compute behind it.
"""
from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from verdicts import MIME, _estimate_module, write_if_changed  # a sibling extension in book/_ext

LADDER = ["ci", "cpu", "long"]  # the scales a chapter may be judged at, cheapest first
COMMITTED = "cpu"  # the largest a committed chapter may use: at most 10 min on 2 cores
MIN_SEED_SETS = 2  # adequacy must hold in at least this many seed sets (independent notebook runs)
RULE = (f"**The scale rule** (fixed before the runs that apply it). A scale is *adequate* for a claim when the "
        f"claim's adequacy check passed in every recorded seed set at that scale, with at least {MIN_SEED_SETS} seed "
        f"sets (each one an independent run of the chapter with its own seeds). A chapter's verdicts are judged at "
        f"`{COMMITTED}`, the largest scale a committed chapter may use (at most 10 minutes on 2 cores); the table "
        f"shows, for information, the cheapest scale of {', '.join(f'`{p}`' for p in LADDER)} adequate for every "
        f"claim of the chapter. A claim that is not adequate at `{COMMITTED}` in every seed set is *not at this scale* "
        f"whatever the committed run's own verdict says: that run happened to be adequate, the scale is not reliably "
        f"so. The landing page's verdict table marks such claims.")
HEADLINES = ["ch1.fig1_steadier", "ch2.ics_equal_step", "ch3.noisy_trains_as_well", "ch4.vgg_smoother",
             "ch5.large_lr_diverge_without_bn", "ch5.gain_from_large_lr"]
ORDER = ["ci", "cpu", "long", "gpu"]


def records_of(nb: Path) -> dict:
    """One executed chapter as a scales record: profile, notebook seed, wall seconds, and each claim's verdict."""
    doc = json.loads(nb.read_text())
    claims, seed = {}, None
    for cell in doc["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []) or "injected-parameters" in \
                cell.get("metadata", {}).get("tags", []):
            for line in "".join(cell["source"]).splitlines():
                if line.replace(" ", "").startswith("seed="):
                    seed = int(line.split("=", 1)[1].split("#")[0])
        for out in cell.get("outputs", []):
            rec = out.get("data", {}).get(MIME)
            if rec:
                for v in rec["verdicts"]:
                    if v.get("claim_id"):
                        claims[v["claim_id"]] = {k: v.get(k) for k in ("reproduced", "effect", "spread", "adequate",
                                                                        "seeds")}
    meta = doc["metadata"].get("bnbook", {})  # a sweep's copy carries the committed run's metadata: read it last
    profile = next((r["profile"] for c in doc["cells"] for o in c.get("outputs", [])
                    for r in [o.get("data", {}).get(MIME)] if r), None) or meta.get("profile")
    seconds = doc["metadata"].get("papermill", {}).get("duration") or meta.get("seconds")
    seconds = None if seconds is None else round(float(seconds), 1)
    chapter = re.sub(r"_seed\d+$", "", nb.stem)
    return {"chapter": chapter, "profile": profile, "seed": seed, "seconds": seconds, "claims": claims,
            "platform": meta.get("platform")}


def cpu_label(platform: dict | None) -> str:
    """A record's CPU kernels in words (bnutils.cache.platform_identity): the same code gives other numbers on
    another kind of CPU, so the page says which one each row ran on."""
    if not platform:
        return "not recorded"
    bf16 = "AMX bf16" if platform.get("amx") else ("AVX512-BF16" if platform.get("cpu_bf16") else "no native bf16")
    return f"{platform.get('cpu')}, {bf16}"


def _fmt(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.3g}"


def training_images(root: Path) -> dict[tuple[str, str], int]:
    """(chapter, profile) -> images trained on in one run of the chapter at that profile, from each chapter's
    `workload(SCALES[profile])` (bench/estimate.py's table of chapters). Empty when the estimator cannot load."""
    try:
        est = _estimate_module(root)
    except Exception:  # noqa: BLE001 (information only: the page then shows no image counts)
        return {}
    out = {}
    for chapter, module in est.WORKLOADS.items():
        for prof, scale in module.SCALES.items():
            if prof in est.PROFILES:
                items = module.workload(scale, est.PROFILES[prof])
                out[chapter, prof] = sum(w["passes"] * w["batch"] for w in items if w["mode"] == "train")
    return out


def page(records: list[dict], registry: dict | None = None, images: dict | None = None) -> str:
    """The page body: one table per headline claim, one row per scale. `registry`: claim id -> (text, effect
    description); `images`: (chapter, profile) -> images trained on in one run of the chapter."""
    if not records:
        return "*No verdict records yet.*\n"
    registry, images = registry or {}, images or {}
    out = []
    for cid in HEADLINES:
        rows = [r for r in records if cid in r["claims"]]
        if not rows:
            continue
        text, effect = registry.get(cid, (cid, "the claim's effect"))
        out += [f"## {text}", "", f"`{cid}`; effect: {effect}.", "",
                "| scale | seeds | outcome per seed set | effect: median (range over seed sets) | adequate | "
                "images trained on (whole chapter) | wall time of the chapter | CPU kernels |",
                "|---|---|---|---|---|---|---|---|"]
        for prof in sorted({r["profile"] for r in rows}, key=lambda p: ORDER.index(p) if p in ORDER else 99):
            rs = sorted((r for r in rows if r["profile"] == prof), key=lambda r: r["seed"] if r["seed"] is not None else -1)
            vs = [r["claims"][cid] for r in rs]
            eff = sorted(v["effect"] for v in vs if v["effect"] is not None and math.isfinite(v["effect"]))
            med = (eff[len(eff) // 2] if len(eff) % 2 else (eff[len(eff) // 2 - 1] + eff[len(eff) // 2]) / 2) if eff else None
            rng = f" ({_fmt(eff[0])} to {_fmt(eff[-1])})" if len(eff) > 1 else ""
            secs = [r["seconds"] for r in rs if r.get("seconds")]
            wall = "—" if not secs else (f"{secs[0] / 60:.1f} min" if len(secs) == 1 else
                                         f"{min(secs) / 60:.1f}–{max(secs) / 60:.1f} min")
            img = images.get((rs[0]["chapter"], prof))
            seeds = ", ".join("/".join(map(str, v.get("seeds") or [r["seed"]])) for v, r in zip(vs, rs))
            rows_out = "; ".join(v["reproduced"] for v in vs)
            out.append(f"| `{prof}` | {seeds} | {rows_out} | {_fmt(med)}{rng} | "
                       f"{sum(bool(v['adequate']) for v in vs)} of {len(vs)} | "
                       f"{'—' if img is None else f'{img:,}'} | {wall} | "
                       f"{'; '.join(sorted({cpu_label(r.get('platform')) for r in rs}))} |")
        out.append("")
    missing = [p for p in ORDER if p not in {r["profile"] for r in records}]
    if missing:
        out.append(f"**No records yet** at: {', '.join(f'`{p}`' for p in missing)} (`long` is 4× the `cpu` "
                   "steps; `gpu` the papers' settings). Their rows appear here once their runs are recorded.")
    return "\n".join(out) + "\n"


def adequacy(records: list[dict]) -> dict[tuple[str, str], dict[str, tuple[int, int]]]:
    """(chapter, scale) -> claim id -> (seed sets whose run was adequate, seed sets recorded)."""
    out: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for r in records:
        for cid, v in r["claims"].items():
            k, n = out.setdefault((r["chapter"], r["profile"]), {}).get(cid, (0, 0))
            out[r["chapter"], r["profile"]][cid] = (k + bool(v["adequate"]), n + 1)
    return out


def unreliable(adeq: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The claims of one (chapter, scale) that the rule does not call adequate: some seed set's run inadequate,
    or fewer than MIN_SEED_SETS seed sets recorded."""
    return {cid: (k, n) for cid, (k, n) in adeq.items() if k < n or n < MIN_SEED_SETS}


def why(k: int, n: int) -> str:
    """Why the rule flags a claim: some seed set inadequate, or too few seed sets recorded."""
    return f"adequate in {k} of {n} seed sets" if k < n else \
        f"{n} seed set{'s' if n != 1 else ''} recorded, the rule needs {MIN_SEED_SETS}"


def cheapest_adequate(adeq: dict[tuple[str, str], dict[str, tuple[int, int]]], chapter: str) -> str | None:
    """The first scale of LADDER adequate for every claim the chapter has there (RULE), or None."""
    for scale in LADDER:
        if (chapter, scale) in adeq and not unreliable(adeq[chapter, scale]):
            return scale
    return None


def rule_table(records: list[dict]) -> str:
    """RULE, then one row per chapter: the cheapest adequate scale, and the claims the rule flags at COMMITTED."""
    adeq = adequacy(records)
    rows = [RULE, "", f"| chapter | cheapest adequate scale | at `{COMMITTED}`: seed sets | at `{COMMITTED}`: claims "
            "flagged by the rule |", "|---|---|---|---|"]
    for chapter in sorted({c for c, _ in adeq}):
        here = adeq.get((chapter, COMMITTED), {})
        flagged = unreliable(here)
        sets = max((n for _, n in here.values()), default=0)
        cheapest = cheapest_adequate(adeq, chapter)
        rows.append(f"| {chapter} | {f'`{cheapest}`' if cheapest else 'none recorded'} | {sets} | "
                    + ("; ".join(f"`{cid}` ({why(k, n)})" for cid, (k, n) in sorted(flagged.items())) or "none")
                    + " |")
    return "\n".join(rows) + "\n"


def collect(root: Path) -> list[dict]:
    """The committed chapters' records plus book/data/scales.json (records of the same chapter, profile and seed
    as a committed chapter are dropped: the committed run is the current one)."""
    live = [records_of(nb) for nb in sorted((root / "notebooks").glob("*.ipynb"))]
    live = [r for r in live if r["claims"]]
    stored_path = root / "book" / "data" / "scales.json"
    stored = json.loads(stored_path.read_text()) if stored_path.is_file() else []
    seen = {(r["chapter"], r["profile"], r["seed"]) for r in live}
    return live + [r for r in stored if (r["chapter"], r["profile"], r["seed"]) not in seen]


def _registry(root: Path) -> dict:
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bnutils.claims import CLAIMS

    return {cid: (c.text, c.effect) for cid, c in CLAIMS.items()}


def _write(app) -> None:
    root = Path(app.srcdir)
    records = collect(root)
    write_if_changed(root / "book" / "_generated" / "scales.md",
                     "## Which scale shows each claim\n\n" + rule_table(records) + "\n"
                     + page(records, _registry(root), training_images(root)))


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
