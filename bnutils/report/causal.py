"""Chapter 6 (BN's benefits without BN): its closing paragraph, generated from its numbers."""
from __future__ import annotations

from typing import Any


def findings(growth: dict[str, list[float]], large: dict[str, Any], summary: dict[str, dict[str, Any]],
                    outcomes: dict[str, str], steps: int) -> str:
    """Chapter 6's closing paragraph from its numbers: the variance growth per network (`growth[v]`, one per
    initialisation), the large-lr outcome (`causal.large_lr_training`), the sweep's `causal.summarize`, the verdicts'
    outcomes by short claim id (`fixes_tolerate_large_lr`, ...) and the steps per run."""
    from statistics import median

    lr_text = lambda x: "no learning rate of the grid" if x is None else f"η = {x:g}"
    o = outcomes
    if large["large"]:
        t = large["trained"]
        sweep = (f"Without BN every seed diverged from η = {min(large['large']):g}. At those rates SkipInit trained in "
                 f"{t['skipinit']} of {large['n_cases']} runs, Fixup in {t['fixup']}, GroupNorm in {t['group']} "
                 f"(verdict: *{o['fixes_tolerate_large_lr']}*).")
    else:
        sweep = ("Without BN no learning rate of the grid diverged in every seed, so this run cannot say whether the "
                 "fixes tolerate what no BN does (verdict: *not at this scale*).")
    fixes, free = o["fixes_tolerate_large_lr"] in ("yes", "partly"), o["batch_free_lr_tolerance"] in ("yes", "partly")
    if fixes and free:
        end = ("So at this scale removing the growth of the activations, with no normalization (SkipInit, Fixup) or "
               "with no batch (GroupNorm), brings back large learning rates: the causal prediction of chapter 5's "
               "explanation survives the test, and BN's batch statistics are not needed for it.")
    elif fixes:
        end = ("So removing the growth without normalization brings back large learning rates, but the batch-free "
               "normalization does not reach BN's: at this scale normalizing each example is not the same as "
               "normalizing over the batch.")
    elif "not at this scale" in (o["fixes_tolerate_large_lr"], o["batch_free_lr_tolerance"]):
        end = ("At this scale the sweep could not show the effect (see the adequacy checks in the verdict table); "
               "run the chapter at the `cpu` or `gpu` profile.")
    else:
        end = ("So removing the growth at initialisation did not bring back the large learning rates here: something "
               "besides that growth is at work, or it returns during training.")
    best = {v: 100 * summary[v]["best_acc"] for v in summary}
    top = {v: lr_text(summary[v]["max_trainable_lr"]) for v in summary}
    return (f"At initialisation the variance grew {median(growth['none']):.0e}x over the "
            f"depth without BN and did not grow for SkipInit and Fixup (at most "
            f"{max(g for v in ('skipinit', 'fixup') for g in growth[v]):.2g}x), by construction. {sweep} Each network "
            f"at its own best learning rate, after the same {steps} steps: BN {best['batchnorm']:.1f}%, SkipInit "
            f"{best['skipinit']:.1f}%, Fixup {best['fixup']:.1f}%, no BN {best['none']:.1f}%, GroupNorm "
            f"{best['group']:.1f}% (close to BN: *{o['fixes_close_to_bn']}*). The largest rate at which every seed "
            f"trained: BN {top['batchnorm']}, GroupNorm {top['group']}, no BN {top['none']} (GroupNorm matches BN's "
            f"tolerance: *{o['batch_free_lr_tolerance']}*). {end} Our runs are far shorter and smaller than the "
            "papers', so a gap in accuracy here may close with a longer budget.")
