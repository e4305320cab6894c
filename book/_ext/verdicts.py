"""Sphinx extension: build the landing page's verdict table (and the runtime table) from the chapters' notebooks.

Each chapter's verdict cell (bnutils.report.show_verdicts) embeds its verdicts as JSON in the notebook. Before the
pages are read, this collects them from notebooks/*.ipynb into book/_generated/verdicts.md, which the landing page
includes: the table is never typed by hand and cannot drift from the chapters. The runtime table joins each
committed run's measured time (notebook metadata) with the `gpu` estimate of bench/estimate.py (FLOP counts).
The claims page (book/claims.md) includes book/_generated/claims.md, written from the registry `bnutils.claims`:
every claim with its quantity, comparison, criterion and adequacy check, the book's pre-registration.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

MIME = "application/vnd.bnbook.verdicts+json"
ICON = {"yes": "**yes**", "partly": "*partly*", "no": "**no**",  # words, not emoji: no font needed
        "not at this scale": "*not at this scale*"}


def label(v: dict) -> str:
    """The 'reproduced' cell: the outcome of a claim; a check (derivation, implementation, by construction) is shown
    as what it is, never as evidence. Records from before the claims registry have no kind: they are claims."""
    kind = v.get("kind", "claim")
    if kind != "claim":
        return f"{kind}, not evidence: {'holds' if v['reproduced'] == 'yes' else 'fails'}"
    return ICON[v["reproduced"]]


def collect(notebooks: Path) -> list[dict]:
    """Every chapter's embedded verdict records, in chapter order."""
    found = []
    for nb in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for out in cell.get("outputs", []):
                if MIME in out.get("data", {}):
                    found.append({**out["data"][MIME], "notebook": nb.stem})
    return found


def table(records: list[dict], flagged: dict[str, str] | None = None) -> str:
    """The landing page's verdict table. `flagged`: claim id -> why, for the claims the scale rule
    (book/_ext/scales.py) does not call adequate at the chapter's scale: marked as not at this scale."""
    if not records:
        return "*No chapter has recorded verdicts yet.*\n"
    flagged = flagged or {}
    rows = ["| chapter | claim | paper | reproduced | at profile | evidence |", "|---|---|---|---|---|---|"]
    for r in records:
        link = f"[{r['chapter']}](../notebooks/{r['notebook']}.ipynb)"
        for v in r["verdicts"]:
            claim, paper, evidence = (v[k].replace("|", "\\|") for k in ("claim", "paper", "evidence"))  # |x| splits cells
            outcome = label(v)
            if v.get("claim_id"):
                claim = f"{claim} (`{v['claim_id']}`)"
                if v["claim_id"] in flagged:
                    outcome += f"; by the [scale rule](scales.md): *not at this scale* ({flagged[v['claim_id']]})"
            rows.append(f"| {link} | {claim} | {paper} | {outcome} | `{r['profile']}` | {evidence} |")
    return "\n".join(rows) + "\n"


def runtimes(notebooks: Path) -> str:
    """Each chapter's measured runtime at the profile its committed outputs come from (notebook metadata), and its
    `gpu` estimate (bench/estimate.py). The estimate is information, never a reason to fail the build: a chapter
    whose estimate raises, or every chapter when the estimator cannot be loaded, shows 'not estimated'."""
    try:
        est = _estimate_module(notebooks.parent)
    except Exception as e:  # noqa: BLE001 (a broken or missing estimator must not break the book)
        est = None
        print(f"runtimes: bench/estimate.py not loaded ({type(e).__name__}: {e}); no gpu estimates", file=sys.stderr)
    rows = ["| chapter | committed outputs from | wall time | CPU time | torch threads | `gpu` on a T4, estimated |",
            "|---|---|---|---|---|---|"]
    for nb in sorted(notebooks.glob("*.ipynb")):
        meta = json.loads(nb.read_text())["metadata"].get("bnbook", {})
        if meta:
            cpu = f"{meta['cpu_seconds'] / 60:.1f} min" if "cpu_seconds" in meta else "not recorded"
            try:  # a chapter without a workload raises KeyError
                gpu = est.fmt_time(est.estimate_chapter(nb.stem).seconds)
            except Exception as e:  # noqa: BLE001
                gpu = "not estimated"
                if est is not None:
                    print(f"runtimes: no gpu estimate for {nb.stem} ({type(e).__name__}: {e})", file=sys.stderr)
            rows.append(f"| [{nb.stem}](../notebooks/{nb.stem}.ipynb) | `{meta['profile']}` | "
                        f"{meta['seconds'] / 60:.1f} min | {cpu} | {meta.get('threads', 'not recorded')} | {gpu} |")
    basis = getattr(est, "BASIS", None)
    basis = f"*Basis of the `gpu` estimates.* {basis}" if basis else "*No `gpu` estimates: bench/estimate.py failed.*"
    return "\n".join(rows) + f"\n\n{basis}\n"


def _estimate_module(root: Path):
    """bench/estimate.py (not a package): FLOP-count estimates of each chapter's gpu runtime. Raises what loading
    it raises (a missing file, an import error); `runtimes` catches it."""
    spec = importlib.util.spec_from_file_location("bnbook_estimate", root / "bench" / "estimate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    return module


def claims_page(root: Path) -> str:
    """The registry of claims (bnutils.claims) as the body of the claims page."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bnutils import claims

    return claims.claims_markdown() + "\n"


def write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _write(app) -> None:
    root = Path(app.srcdir)
    import scales  # a sibling extension, imported here: it imports this module

    adeq = scales.adequacy(scales.collect(root))
    flagged = {cid: scales.why(k, n) for (_, scale), claims in adeq.items() if scale == scales.COMMITTED
               for cid, (k, n) in scales.unreliable(claims).items()}
    write_if_changed(root / "book" / "_generated" / "verdicts.md", table(collect(root / "notebooks"), flagged))
    write_if_changed(root / "book" / "_generated" / "runtimes.md", runtimes(root / "notebooks"))
    write_if_changed(root / "book" / "_generated" / "claims.md", claims_page(root))


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
