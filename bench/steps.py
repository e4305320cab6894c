"""Each chapter's `gpu` runtime extrapolated from measured step times (run by tools/gpu_check.sh on a CUDA machine).

    python bench/steps.py [--steps 5] [--chapters 01_bn_basics ...] [--json OUT.json] [--md OUT.md]

Every work item of a chapter's `workload(SCALES["gpu"], PROFILES["gpu"])` (bench/estimate.py's data: network,
batch, kind of pass, AMP, device, passes) is timed here for `--steps` passes of its kind (a `bnutils.train` step
with the item's AMP and augmentation, a forward + backward, or a forward pass) after two untimed ones, on the
item's device (CUDA items on the CPU when there is no CUDA); the chapter's time is the sum of passes x measured
seconds per pass. Identical items are timed once. Left out, as in the FLOP estimate: set-up, data loading,
plotting, and the metrics' own extra ops; an item that batches several passes into one launch (vmap) is counted
pass by pass, so those items come out high.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import estimate as E  # noqa: E402  (bench/estimate.py; it puts the repository on sys.path)
from bnutils import data as D  # noqa: E402
from bnutils.models import MLP, VGG, DeepLinear, ResNet  # noqa: E402
from bnutils.train import train  # noqa: E402


def build(key: str, width: float, device: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The network a workload names ('vgg16/noisy', 'resnet110/none', 'dln/l1', 'mlp/batchnorm') and its input shape,
    as bench/estimate.py counts it, on `device`."""
    arch, norm = key.split("/")
    if arch.startswith("vgg"):
        return VGG(arch, width=width, norm=norm).to(device), (3, 32, 32)
    if arch.startswith("resnet"):
        return ResNet(depth=int(arch[len("resnet"):]), norm=norm, width=width).to(device), (3, 32, 32)
    if arch == "dln":
        return DeepLinear(depth=25, dim=10, norm=norm).to(device), (10,)
    if arch == "mlp":
        return MLP(3 * 32 * 32, width=100, depth=3, activation="sigmoid", norm=norm, init="glorot").to(device), (3, 32, 32)
    raise ValueError(f"unknown model key {key!r}")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def seconds_per_pass(w: E.Work, steps: int) -> float:
    """Median seconds of one pass of work item `w` (its kind, network, batch, AMP, augmentation) on its device."""
    device = w.device if w.device == "cpu" or torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model, shape = build(w.model, w.width, device)
    regression = w.model.startswith("dln")
    x = torch.randn(w.batch, *shape, device=device)
    y = (torch.randn(w.batch, 10, device=device) if regression else
         torch.randint(0, 10, (w.batch,), device=device))
    loss = (lambda o, t: (o - t).pow(2).sum()) if regression else F.cross_entropy
    if w.mode == "train":  # bnutils.train itself: its loop, AMP, channels_last and augmentation
        data = D.Dataset("random", D.Split(x, y), D.Split(x, y), "regression" if regression else "classification")
        run = lambda: train(model, data, steps=steps, lr=1e-6, batch_size=w.batch, amp=w.amp, augment=w.augment,
                            progress=False, divergence_factor=1e30).seconds / steps
        run()  # warm-up: cuDNN's algorithm choice, the allocator
        return min(run(), run())
    def one() -> None:
        if w.backward:
            model.zero_grad(set_to_none=True)
            loss(model(x), y).backward()
        else:
            with torch.no_grad():
                model(x)
    times = []
    for i in range(steps + 2):
        _sync(device)
        t0 = time.perf_counter()
        one()
        _sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def extrapolate(chapter: str, per_pass: Callable[[E.Work], float]) -> dict[str, object]:
    """A chapter's extrapolated seconds: the sum over its gpu work items of passes x `per_pass(item)`, with the items."""
    items = []
    for w in E.chapter_workload(chapter):
        s = per_pass(w)
        items.append({"what": w.what, "model": w.model, "mode": w.mode, "batch": w.batch, "amp": w.amp,
                      "device": w.device, "passes": w.passes, "seconds_per_pass": s, "seconds": w.passes * s})
    return {"chapter": chapter, "seconds": sum(i["seconds"] for i in items), "items": items}


def measure_all(chapters: list[str], steps: int) -> list[dict[str, object]]:
    """extrapolate() for each chapter, timing each distinct work item once."""
    memo: dict[tuple, float] = {}

    def per_pass(w: E.Work) -> float:
        key = (w.model, w.width, w.mode, w.batch, w.amp, w.device, w.augment)
        if key not in memo:
            memo[key] = seconds_per_pass(w, steps)
        return memo[key]
    return [extrapolate(ch, per_pass) for ch in chapters]


def markdown(results: list[dict[str, object]], device: str, steps: int) -> str:
    lines = [f"Extrapolated from {steps} measured passes of each work item on {device} (bench/steps.py).", "",
             "| chapter | extrapolated | largest item |", "|---|---|---|"]
    for r in results:
        top = max(r["items"], key=lambda i: i["seconds"])
        lines.append(f"| {r['chapter']} | {E.fmt_time((r['seconds'], r['seconds']))} | {top['what']} "
                     f"({E.fmt_time((top['seconds'], top['seconds']))}) |")
    total = sum(r["seconds"] for r in results)
    lines.append(f"| all chapters | {E.fmt_time((total, total))} | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed passes per work item (after two untimed ones)")
    ap.add_argument("--chapters", nargs="*", default=list(E.WORKLOADS), choices=list(E.WORKLOADS))
    ap.add_argument("--json", help="write the results (per chapter and item) here")
    ap.add_argument("--md", help="write the markdown table here")
    args = ap.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "the CPU (no CUDA)"
    t0 = time.perf_counter()
    results = measure_all(args.chapters, args.steps)
    text = markdown(results, device, args.steps)
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "steps": args.steps, "chapters": results,
                                               "measured_in_s": time.perf_counter() - t0}, indent=1))
    if args.md:
        Path(args.md).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
