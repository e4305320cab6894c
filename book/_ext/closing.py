"""Sphinx extension: the closing chapter's tables, one per explanation of why BN works, from the chapters' verdicts.

Each explanation names the registered claims (bnutils.claims ids) that test it. Before the pages are read, this
writes book/_generated/why.md: for every explanation, its claims with the verdict each chapter computed and a
tally. The closing chapter's weighing therefore changes whenever a verdict does; nobody types it.
"""
from __future__ import annotations

import json
from pathlib import Path

from verdicts import write_if_changed  # a sibling extension in book/_ext

MIME = "application/vnd.bnbook.verdicts+json"

# The claims that bear on each explanation, and in which direction a "yes" points.
EXPLANATIONS = {
    "ics": ("BN works by reducing internal covariate shift (Ioffe & Szegedy)", [
        ("ch1.fig1_steadier", "for"),
        ("ch2.fig1_similar_distributions", "against"),
        ("ch2.ics_equal_step", "against"),
        ("ch2.ics_equal_loss", "against"),
        ("ch2.dln_cosine", "against"),
        ("ch3.noisy_trains_as_well", "against"),
        ("ch3.noisy_less_stable", "against"),
    ]),
    "smoothness": ("BN works by making the loss landscape smoother (Santurkar et al.)", [
        ("ch4.vgg_smoother", "for"),
        ("ch4.dln_smoother", "for"),
        ("ch4.fig11_gradient_change", "for"),
        ("ch4.lp_train_as_well", "for"),
        ("ch4.lp_smooth_as_bn", "for"),
    ]),
    "large_lr": ("BN works by permitting large learning rates (Bjorck et al.)", [
        ("ch5.large_lr_diverge_without_bn", "for"),
        ("ch5.equal_at_small_lr", "for"),
        ("ch5.gain_from_large_lr", "for"),
        ("ch5.relative_loss", "for"),
        ("ch5.activations_explode", "for"),
        ("ch6.fixes_tolerate_large_lr", "for"),
        ("ch6.fixes_close_to_bn", "for"),
        ("ch6.batch_free_lr_tolerance", "for"),
    ]),
}
WORD = {"yes": "**yes**", "partly": "*partly*", "no": "**no**", "not at this scale": "*not at this scale*"}


def verdicts_by_id(notebooks: Path) -> dict[str, dict]:
    """claim id -> {verdict fields, notebook, chapter, profile} from every chapter's embedded verdict records."""
    out: dict[str, dict] = {}
    for nb in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for o in cell.get("outputs", []):
                rec = o.get("data", {}).get(MIME)
                for v in (rec or {}).get("verdicts", []):
                    if v.get("claim_id"):
                        out[v["claim_id"]] = {**v, "notebook": nb.stem, "chapter": rec["chapter"],
                                              "profile": rec["profile"]}
    return out


def explanation_table(key: str, found: dict[str, dict]) -> str:
    """The claims that test one explanation, their verdicts, and a tally that says what the evidence amounts to."""
    title, claims = EXPLANATIONS[key]
    rows = ["| claim | chapter | a *yes* speaks | verdict |", "|---|---|---|---|"]
    tally = {"for": [], "against": [], "open": []}
    for cid, direction in claims:
        v = found.get(cid)
        if v is None:
            rows.append(f"| `{cid}` | — | {direction} the explanation | not run |")
            tally["open"].append(cid)
            continue
        claim = v["claim"].replace("|", "\\|")
        rows.append(f"| {claim} | [{v['chapter']}](../notebooks/{v['notebook']}.ipynb) | {direction} the explanation | "
                    f"{WORD[v['reproduced']]} |")
        if v["reproduced"] in ("yes", "partly"):
            tally[direction].append(v["reproduced"])
        elif v["reproduced"] == "no":
            tally["against" if direction == "for" else "for"].append("yes")  # a refuted claim counts fully
        else:
            tally["open"].append(cid)
    side = lambda k: (f"{len(tally[k])} ({tally[k].count('yes')} fully, {tally[k].count('partly')} in part)"
                      if tally[k] else "0")
    summary = (f"Of {len(claims)} claims, {side('for')} support this explanation, {side('against')} speak against "
               f"it, and {len(tally['open'])} could not be decided at the scale run.")
    return "\n".join(rows) + f"\n\n{summary}\n"


def page(notebooks: Path) -> str:
    found = verdicts_by_id(notebooks)
    parts = []
    for key, (title, _) in EXPLANATIONS.items():
        parts.append(f"### {title}\n\n{explanation_table(key, found)}")
    return "\n".join(parts)


def _write(app) -> None:
    root = Path(app.srcdir)
    write_if_changed(root / "book" / "_generated" / "why.md", page(root / "notebooks"))


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
