"""Chapter 2 (internal covariate shift): its generated prose and tables, from numbers the chapter computed."""
from __future__ import annotations

import math
from typing import Any, Sequence

from . import OUTCOMES, Verdict, span


def ratio_groups(rows: Sequence[dict[str, Any]], key: str = "l2_ratio", *,
                 band: tuple[float, float] = (0.8, 1.25)) -> str:
    """Generated prose for BN / standard ratios over rows of a chapter's table (dicts with 'layer', 'lr' and `key`).

    The rows are grouped into 'larger' (ratio above `band`), 'similar' (within it) and 'smaller' (below it); each
    group is given with where it holds and its range, e.g. 'larger at #5 (η = 0.1) and #10 (η = 0.1): 3.4-5.5x;
    similar (0.8-1.25x) at #10 (η = 0.01): 0.82x', or 'in all 4 rows' / 'in both rows' when one group holds them all.
    Rows whose ratio is not finite are left out; 'n/a' when none is left.
    """
    lo, hi = band
    if not 0 < lo <= 1 <= hi:
        raise ValueError(f"band={band!r} must be (lo, hi) with 0 < lo <= 1 <= hi")
    rows = [r for r in rows if math.isfinite(r[key])]
    groups = {"larger": [r for r in rows if r[key] > hi],
              f"similar ({lo:g}-{hi:g}x)": [r for r in rows if lo <= r[key] <= hi],
              "smaller": [r for r in rows if r[key] < lo]}
    out = []
    for name, g in groups.items():
        if not g:
            continue
        names = [f"#{r['layer']} (η = {r['lr']:g})" for r in g]
        where = ("in both rows" if len(rows) == 2 else f"in all {len(rows)} rows") if len(g) == len(rows) > 1 else \
            "at " + (" and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0])
        out.append(f"{name} {where}: {span([r[key] for r in g])}x")
    return "; ".join(out) or "n/a"


def scan_table(scan: dict[str, Any]) -> str:
    """A Markdown table of a learning-rate scan (`bnutils.experiments.ics.lr_scan`): per lr and network, the final
    smoothed training loss with the test accuracy in brackets ('diverged' for a diverged run), and whether each
    network trains."""
    lrs = scan["lrs"]
    entry = lambda d, i: "diverged" if d["diverged"][i] else f"{d['final_loss'][i]:.2f} ({100 * d['test_acc'][i]:.0f} %)"
    rows = [f"| {name}: final loss (test acc.) | " + " | ".join(entry(scan[norm], i) for i in range(len(lrs))) + " |"
            for norm, name in (("none", "standard"), ("batchnorm", "BN"))]
    yes = lambda t: "yes" if t else "no"
    rows.append("| trains? (standard / BN) | " + " | ".join(
        f"{yes(a)} / {yes(b)}" for a, b in zip(scan["none"]["trains"], scan["batchnorm"]["trains"])) + " |")
    return ("| η | " + " | ".join(f"{lr:g}" for lr in lrs) + " |\n|---|" + "---|" * len(lrs) + "\n"
            + "\n".join(rows))


def who(trains_none: bool, trains_bn: bool) -> str:
    """Which of the two networks trains, in words."""
    return ("both networks train" if trains_none and trains_bn else "only BN trains" if trains_bn else
            "only the standard network trains" if trains_none else "neither network trains")


def scan_text(scan: dict[str, Any], lr_both: float, lr_bn_only: float, vgg_steps: int) -> str:
    """What the learning-rate probe (`experiments.ics.lr_scan`, whose grid holds both lrs) says about the pair
    (lr_both: both nets should train; lr_bn_only: only BN should), as the paper uses it."""
    ok = {norm: dict(zip(scan["lrs"], scan[norm]["trains"])) for norm in ("none", "batchnorm")}
    at = lambda norm: ("η = " + ", ".join(f"{lr:g}" for lr, t in ok[norm].items() if t) if any(ok[norm].values())
                       else "no η of the grid")
    want = {lr_both: (True, True), lr_bn_only: (False, True)}  # (standard trains, BN trains), as in the paper
    match = {lr: (ok["none"][lr], ok["batchnorm"][lr]) == w for lr, w in want.items()}
    pair, n = f"{lr_both:g}/{lr_bn_only:g}", scan["steps"]
    if not any(any(v.values()) for v in ok.values()):
        msg = f"In {n}-step runs neither network trains at any of these rates: the probe says nothing about the pair. "
    elif all(match.values()):
        return (f"In {n}-step runs the standard network trains at {at('none')}; the BN network at {at('batchnorm')}. "
                f"So the pair {pair} keeps its meaning at this scale: both train at η = {lr_both:g}, only BN at "
                f"η = {lr_bn_only:g}.")
    else:
        loss_both, limit = scan["none"]["final_loss"][scan["lrs"].index(lr_both)], 0.9 * math.log(10)
        parts = [f"at η = {lr:g} {who(*ok_lr)}" + (", as in the paper" if match[lr] else "")
                 + (f" (the standard network's final loss is {loss_both:.2f}, above the threshold {limit:.2f})"
                    if lr == lr_both and not ok_lr[0] and loss_both >= limit else "")
                 for lr in want for ok_lr in [(ok["none"][lr], ok["batchnorm"][lr])]]
        msg = (f"In {n}-step runs the standard network trains at {at('none')}; the BN network at {at('batchnorm')}. "
               + (f"So the probe confirms the pair {pair} only in part: " if any(match.values()) else
                  f"So the probe does not confirm the pair {pair}: ") + "; ".join(parts) + ". "
               + (f"The grid's own pair would be {scan['pair'][0]:g}/{scan['pair'][1]:g}. " if scan["pair"] else
                  "The grid holds no η at which both train below one at which only BN trains. "))
    return msg + f"We keep the pair; the {vgg_steps}-step runs below re-check it, and the verdicts at the end are computed from them."


def drift_text(drifts: dict[tuple[str, str], float], similar: bool, dead: Sequence[dict[str, Any]] = (),
                   layers: Sequence[str] = ("#3", "#11")) -> str:
    """The layer-input distributions in words, from `experiments.ics.layer_drifts` ({(layer, norm): drift}),
    whether the registry calls the drifts similar, and `dead_channels` (only the standard network's are dead: its
    conv output is the ReLU's input; BN's is re-centred before the ReLU)."""
    ratio = {l: drifts[(l, "none")] / drifts[(l, "batchnorm")] for l in layers}  # > 1: BN's inputs move less
    at = lambda norm: " and ".join(f"{drifts[(l, norm)]:.3f} at {l}" for l in layers)
    lo, hi = min(ratio.values()), max(ratio.values())
    if lo > 2:
        msg = (f"Before BN, the conv outputs of the BN network drift {'far ' if lo > 5 else ''}less than the standard "
               f"network's: {at('batchnorm')} per record, against {at('none')} ({span(ratio.values(), '.0f')}x less). ")
    elif hi < 0.5:
        msg = f"The BN network's conv outputs drift more than the standard network's: {at('batchnorm')} per record, against {at('none')}. "
    elif similar:
        msg = f"With and without BN the layer inputs drift about as much: {at('batchnorm')} per record with BN, {at('none')} without. "
    else:
        msg = f"The two layers disagree: drift per record {at('batchnorm')} with BN, {at('none')} without. "
    for d in dead:
        if d["norm"] == "none":
            msg += (f"(The channel shown for the standard network at {d['layer']} is below zero in {d['below']} of its "
                    f"{d['n']} recorded values: {'dead' if d['all'] else 'nearly dead'} behind its ReLU.) ")
    return msg + ("So at our scale the *distributional* picture of ICS does separate the two networks, more than "
                  "Santurkar et al.'s histograms (\"only slightly different\") suggested, and the verdict below says so."
                  if lo > 2 else "So at our scale, as in Santurkar et al.'s histograms (\"only slightly different\"), "
                  "the *distributional* picture barely separates the two networks." if similar else
                  "So at our scale the *distributional* picture does not consistently show BN stabilizing the layer inputs.")


def ics_table(summary: Sequence[dict[str, Any]]) -> str:
    """The chapter's numbers table (`experiments.ics.ics_rows`' summary) in Markdown."""
    yn = lambda b: "yes" if b else "no"
    rows = [f"| {s['name']} | {s['lr']:g} | #{s['layer']} | {s['l2_none']:.3g} | {s['l2_batchnorm']:.3g} | "
            f"{s['l2_ratio']:.2f} | {s['cos_none']:.2f} | {s['cos_batchnorm']:.2f} | {s['rel_none']:.2f} | "
            f"{s['rel_batchnorm']:.2f} | {s['eq_ratio']:.2f} | {s['eq_dcos']:+.2f} | {yn(s['reduces_step'])} / "
            f"{yn(s['reduces_loss']) if s['has_loss'] else 'n/a'} |" for s in summary]
    return ("| net | η | layer | ℓ2 std | ℓ2 BN | ratio | cos std | cos BN | rel std | rel BN | ratio at equal loss | "
            "Δcos at equal loss | BN reduces ICS? (step / loss) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            + "\n".join(rows))


def readings_table(rows: Sequence[dict[str, Any]], lr: float, steps: int) -> str:
    """The secondary analysis (`metrics.ics_summaries.readings`): ICS under the main reading (every earlier parameter moves)
    and the weights-only one, per layer and network, with a sentence on whether the BN / standard comparison
    changes sides of 1 between them."""
    t = ("| layer | reading | ℓ2 std | ℓ2 BN | ratio BN / std | cos std | cos BN |\n|---|---|---|---|---|---|---|\n"
         + "\n".join(f"| #{r['layer']} | {name} | {r[f'l2_none_{k}']:.3g} | {r[f'l2_batchnorm_{k}']:.3g} | "
                     f"{r[f'ratio_{k}']:.2f} | {r[f'cos_none_{k}']:.2f} | {r[f'cos_batchnorm_{k}']:.2f} |"
                     for r in rows for k, name in (("all", "all earlier parameters (main)"),
                                                   ("weights", "weights only (secondary)"))))
    flips = [r for r in rows if (r["ratio_all"] < 1) != (r["ratio_weights"] < 1)]
    if not all(math.isfinite(r[f"ratio_{k}"]) for r in rows for k in ("all", "weights")):
        note = "These runs are too short to measure a ratio at every layer: no comparison of the readings here."
    else:
        note = (f"At {'layer ' + ', '.join('#' + str(r['layer']) for r in flips)} the two readings put BN on different "
                "sides of the standard network: the reading matters there." if flips else
                "Under both readings BN's ℓ2 difference is on the same side of the standard network's at every layer "
                "shown: here the comparison does not hinge on the reading.")
    return f"*Secondary analysis* (VGG, η = {lr:g}, one seed, {steps} steps):\n\n{t}\n\n{note}"


def what_this_means(verdicts: Sequence[Verdict], fig1: dict[str, Any], lrs: tuple[float, float], vgg_steps: int,
                        drift_ratio: dict[str, float], similar: bool, summary: Sequence[dict[str, Any]],
                        dln_cos: dict[tuple[float, str], tuple[float, float]]) -> str:
    """The chapter's 'What this means' in Markdown, written from its numbers: the six verdicts (in the chapter's
    order), Fig 1's outcomes (`experiments.ics.fig1_outcomes`), the Fig 1 pair of lrs, the drift ratios standard /
    BN per layer, `similar` (the drifts count as similar), the numbers table (`ics_rows`' summary) and the DLN
    cosines ((lr, norm) -> (median, 10-90 % range))."""
    from ..claims.core import DLN_COS_NEAR_1, ICS_DCOS, ICS_L2_RATIO  # claims imports this module
    v_both, v_high, _, _, _, v_dln = verdicts
    lr_both, lr_bn_only = lrs
    words = [v.reproduced for v in verdicts]
    tr, acc = fig1["trains"], fig1["acc"]
    fa = lambda norm, lr: "diverged" if fig1["diverged"][(norm, lr)] else f"{acc[(norm, lr)]:.2f}"
    n_rows, n_step = len(summary), sum(not s["reduces_step"] for s in summary)
    loss_rows = [s for s in summary if s["has_loss"]]
    n_loss = sum(not s["reduces_loss"] for s in loss_rows)
    if n_step == n_rows and n_loss == len(loss_rows):
        answer = "No, not in Santurkar et al.'s sense"
    elif n_step == n_rows:
        answer = f"Not at equal step; at equal loss it does in {len(loss_rows) - n_loss} of {len(loss_rows)} rows"
    else:
        answer = f"In {n_rows - n_step} of {n_rows} (net, η, layer) rows at equal step; not in the others"
    tally = ", ".join(f"{words.count(w)} {w}" for w in OUTCOMES if words.count(w))
    out = [f"**Does BN reduce internal covariate shift? {answer}.** Our {len(verdicts)} verdicts: {tally}.", ""]
    status = {("yes", "yes"): "holds", ("no", "no"): "does not hold"}.get((v_both.reproduced, v_high.reproduced),
                                                                         "holds in part")
    if "not at this scale" in (v_both.reproduced, v_high.reproduced):
        status = "cannot be judged"
    both_lo, bn_better = fig1["both_lo"], fig1["bn_better"]
    ahead = (", and BN is ahead" if bn_better else ", but BN is not ahead") if both_lo else ""
    out.append(f"- *Fig 1 {status} at this scale.* At η = {lr_both:g} {who(tr[('none', lr_both)], tr[('batchnorm', lr_both)])}"
               f"{ahead} (test accuracy {fa('batchnorm', lr_both)} with BN, {fa('none', lr_both)} without, after "
               f"{vgg_steps} steps; the paper: 83 % vs 80 % after 15k steps"
               + ("; the ordering is the same" if both_lo and bn_better else "")
               + f"); at η = {lr_bn_only:g} {who(tr[('none', lr_bn_only)], tr[('batchnorm', lr_bn_only)])} (test "
               f"accuracy {fa('batchnorm', lr_bn_only)} with BN, {fa('none', lr_bn_only)} without; chance is 0.10)."
               + ("" if any(tr.values()) else f" {vgg_steps} steps are too few here for any of these runs to train."))
    notion = "the *distributional* notion of ICS, the one Definition 2.1 replaces"
    if min(drift_ratio.values()) > 2:
        out.append(f"- *The layer inputs are more stable with BN* at this scale (drift {span(drift_ratio.values(), '.0f')}"
                   "x smaller), more than the paper's \"only slightly different\" histograms suggest. "
                   + (f"That is the only verdict that goes against the paper, and it concerns {notion}."
                      if words.count("no") == 1 else f"Our runs disagree with the paper here, on {notion}."))
    else:
        out.append("- *The layer inputs are " + ("about as stable with BN as without*, as in the paper's histograms"
                                                if similar else "not consistently more stable with BN*")
                   + f" (standard / BN drift {span(drift_ratio.values())}x); this is {notion}.")
    vgg_rows, dln_rows = [s for s in summary if s["name"] == "VGG"], [s for s in summary if s["name"] == "DLN"]
    red = [s for s in vgg_rows if s["reduces_step"]]
    dcos = [s["cos_batchnorm"] - s["cos_none"] for s in vgg_rows]
    n_low, n_high = sum(d < -ICS_DCOS for d in dcos), sum(d > ICS_DCOS for d in dcos)
    eq = [s for s in vgg_rows if s["has_loss"]]
    eq_red = sum(s["reduces_loss"] for s in eq)
    if not red:
        head = "- *ICS by Definition 2.1 is not reduced by BN in the VGG" + (
            ": it is similar or larger.*" if all(s["l2_ratio"] >= ICS_L2_RATIO for s in vgg_rows) else ".*")
    else:
        head = f"- *BN reduces ICS by Definition 2.1 in {len(red)} of the {len(vgg_rows)} VGG rows.*"
    if not eq:
        at_loss = "At this scale the two VGGs' training losses do not overlap: no equal-loss comparison."
    else:
        at_loss = ("At equal training loss, where BN no longer gets credit or blame for being further along, the ℓ2 "
                   f"ratio is {ratio_groups(eq, 'eq_ratio')}. "
                   + (f"With the cosines, a reduction in {eq_red} of {len(eq)} rows." if eq_red else
                      "Still no reduction." if not red else "No reduction there."))
    out.append(f"{head} BN's ℓ2 difference, against the standard network's, is {ratio_groups(vgg_rows)}; its cosine is "
               f"lower by more than {ICS_DCOS:g} in {f'{n_low} of the' if n_low < len(dcos) else 'all'} {len(dcos)} rows "
               f"and higher in {n_high or 'none'}. The scale-free relative difference ‖G − G′‖/‖G‖ "
               f"({span([s['rel_batchnorm'] for s in vgg_rows])} with BN, {span([s['rel_none'] for s in vgg_rows])} "
               f"without) is with BN {ratio_groups(vgg_rows, 'rel_ratio')}. {at_loss}")
    for lr in sorted({s["lr"] for s in dln_rows}, key=lambda lr: dln_cos[(lr, "none")][0] <= DLN_COS_NEAR_1):
        rows = [s for s in dln_rows if s["lr"] == lr]
        (ms, ss), (mb, sb) = dln_cos[(lr, "none")], dln_cos[(lr, "batchnorm")]
        bn_l2 = f"BN's ℓ2 difference, against the standard network's, is {ratio_groups(rows)}"
        if ms > DLN_COS_NEAR_1:
            out.append(f"- *The DLN at η = {lr:g}"
                       + (" is the paper's picture:*" if mb < ms and sb > ss else
                          ": the standard network matches the paper, BN does not:*")
                       + f" the standard network's cosine stays at {ms:.2f} (median over layers #9 and #17; 10-90 % "
                       f"range {ss:.2f}) while BN's is {mb:.2f} (range {sb:.2f}); {bn_l2}.")
        else:
            anti = "".join(f"; layer #{s['layer']} even anti-aligned, median cos {s['cos_none']:.2f}"
                           for s in rows if s["cos_none"] < -0.5)
            out.append(f"- *At η = {lr:g} our standard DLN disagrees with the paper.* Its own cosine swings (median "
                       f"{ms:.2f} over layers #9 and #17, 10-90 % range {ss:.2f}{anti}), so it has large ICS too; BN's "
                       f"cosine median is {mb:.2f} and {bn_l2}. Our reading, not a measurement: with the loss summed "
                       f"over 1000 points and our Glorot-normal initialization, η = {lr:g} is close to the edge of "
                       "stability for the standard DLN. The paper reports the standard DLN's cosine near 1 at this "
                       "rate; we do not see that" + (f", hence the \"{v_dln.reproduced}\" above."
                                                      if v_dln.reproduced != "yes" else "."))
    more = "*more*" if sum(s["l2_ratio"] > 1.25 for s in summary) > n_rows / 2 else "as much or more"
    if n_step < n_rows:
        gist = (f"BN reduces ICS in {n_rows - n_step} of {n_rows} rows, so at this scale the numbers do not rule out "
                "that reducing ICS is part of what BN does")
    else:
        gist = (("BN trains better (Fig 1) while its layers" if (both_lo and bn_better) or fig1["only_bn_hi"] else
                 "at this scale Fig 1 does not show BN training better, but its layers")
                + f" see gradients that change {more} when the earlier layers move. Whatever BN does for optimization, "
                "reducing ICS in the sense that matters for the gradients is not it")
    out += ["", f"Put together: {gist}; the next chapters test what Santurkar et al. propose instead (the noisy-BN "
            "experiment and the smoothness of the loss landscape)."]
    return "\n".join(out)
