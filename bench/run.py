"""Benchmarks of bnutils, each measured side by side in one run (the machine is shared and noisy), written to
BENCHMARKS.md with the machine, the date, medians and ratios.

    python bench/run.py            # CPU benchmarks (a few minutes)
    python bench/run.py --book     # ... and every chapter's wall time at ci
    python bench/run.py --book --ci  # ... timing the whole CI command (make test) instead of the chapters alone
    python bench/run.py --gpu      # on a CUDA machine: images/s and the fraction of measured matmul throughput
    python bench/run.py --quick --out X.md --json X.json   # seconds: the training loop only (the CPU fallback of
                                   # tools/gpu_check.sh); with --gpu, the GPU training step only
    python bench/run.py --only 7 8 # the CPU sections numbered 7 and 8 alone, printed (written only with --out)

Every run also writes section 6, each chapter's `gpu` runtime on a T4 estimated from FLOP counts (bench/estimate.py,
a few seconds on the meta device); on a T4, --gpu feeds it the measured AMP throughput.

Tests prove that fast and slow paths agree; this script only measures speed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bnutils import data as D  # noqa: E402
from bnutils.models import VGG  # noqa: E402
from bnutils.modes import Hooks  # noqa: E402
from bnutils.train import seed_everything, train  # noqa: E402
from metric_costs import bench_ics, bench_probes, extra_sections  # noqa: E402
from timing import interleaved, median_time, small_cifar, table  # noqa: E402


def bench_train_loop(steps: int, repeats: int) -> dict[str, float]:
    """bnutils.train (no callbacks, no progress bar) against a bare PyTorch SGD loop on the same model and data."""
    data = small_cifar()

    def ours():
        seed_everything(0)
        model = VGG(width=0.125, norm="batchnorm")
        train(model, data, steps=steps, lr=0.05, momentum=0.9, batch_size=128, progress=False)

    def bare():
        seed_everything(0)
        model = VGG(width=0.125, norm="batchnorm")
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        it = D.batches(data.train, 128, seed=0)
        model.train()
        for _ in range(steps):
            x, y = next(it)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    t = interleaved({"bnutils.train": ours, "bare loop": bare}, repeats)
    return {**t, "ratio (bare / bnutils, steps/s)": t["bare loop"] / t["bnutils.train"], "steps": steps}


def bench_data(repeats: int) -> dict[str, float]:
    """One epoch over the CIFAR-10 training set: bnutils' tensor batches vs a torchvision DataLoader over the same
    uint8 images (PIL conversion + ToTensor + Normalize per image, as torchvision.datasets.CIFAR10 does)."""
    import torchvision.transforms as TF
    from PIL import Image

    from bnutils.cifar10 import cifar10_arrays

    arrays = cifar10_arrays()
    x_u8, y = arrays["x_train"], arrays["y_train"]
    split = D.Split(D.to_tensor(x_u8), torch.from_numpy(y))
    tf = TF.Compose([TF.ToTensor(), TF.Normalize(D.MEAN, D.STD)])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return tf(Image.fromarray(x_u8[i])), int(y[i])

    def ours():
        it = D.batches(split, 128, seed=0)
        for _ in range(len(y) // 128):
            next(it)

    def loader():
        for _ in torch.utils.data.DataLoader(Images(), batch_size=128, shuffle=True, drop_last=True, num_workers=0):
            pass

    t = interleaved({"bnutils tensor batches": ours, "torchvision DataLoader": loader}, repeats)
    return {**t, "speed-up": t["torchvision DataLoader"] / t["bnutils tensor batches"], "images": len(y)}


def bench_gpu() -> dict[str, float]:
    """Images/s of a VGG-16 training step (AMP, channels_last) and the device's measured fp16 matmul throughput."""
    assert torch.cuda.is_available(), "--gpu needs a CUDA device"
    dev = torch.device("cuda")
    a = torch.randn(8192, 8192, device=dev, dtype=torch.float16)
    torch.cuda.synchronize()
    t = median_time(lambda: (a @ a, torch.cuda.synchronize()), 10)
    matmul_tflops = 2 * 8192 ** 3 / t / 1e12
    model = VGG(width=1.0, norm="batchnorm").to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda")
    x = torch.randn(128, 3, 32, 32, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,), device=dev)
    flops = 3 * 2 * vgg_macs(model)  # forward + backward ~ 3 forwards

    def step():
        with torch.autocast("cuda", dtype=torch.float16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(10):
        step()
    torch.cuda.synchronize()
    t = median_time(lambda: [step() for _ in range(20)] and torch.cuda.synchronize(), 5) / 20
    achieved = flops * 128 / t / 1e12
    return {"device": torch.cuda.get_device_name(), "matmul TFLOP/s (fp16)": matmul_tflops,
            "VGG-16 images/s": 128 / t, "achieved TFLOP/s": achieved, "fraction of matmul": achieved / matmul_tflops}


def vgg_macs(model: torch.nn.Module) -> int:
    """Multiply-accumulates of one forward pass for one 32x32 image, counted with hooks."""
    macs = 0

    def hook(_k, m, i, o):
        nonlocal macs
        if isinstance(m, torch.nn.Conv2d):
            macs += o.numel() // o.shape[0] * m.in_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, torch.nn.Linear):
            macs += m.in_features * m.out_features
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with Hooks(layers, hook), torch.no_grad():
        model(torch.zeros(1, 3, 32, 32, device=next(model.parameters()).device))
    return macs


def bench_book(whole_ci: bool) -> dict[str, object]:
    """Per-chapter wall time: `cpu` from the committed notebooks' metadata, `ci` by running the CI check now: the
    chapters alone, or with `whole_ci` the whole CI command (`make test`: unit tests, chapters, book build, browser
    test; the virtual environment already installed). Both start from an empty BNBOOK_CACHE, as CI does."""
    import re
    import subprocess
    import tempfile

    rows: dict[str, object] = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        meta = json.loads(nb.read_text())["metadata"].get("bnbook", {})
        rows[f"{nb.stem} at cpu (committed run), s"] = meta.get("seconds", float("nan"))
    cmd = ["make", "-C", str(ROOT), "test"] if whole_ci else [sys.executable, str(ROOT / "tools" / "nb.py"), "ci"]
    with tempfile.TemporaryDirectory() as cache:  # an empty cache, as on CI: nothing decoded or trained before
        t0 = time.perf_counter()
        run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "BNBOOK_CACHE": cache})
        seconds = time.perf_counter() - t0
    if run.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {run.returncode}):\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    out = run.stdout
    label = "whole CI run (make test, empty cache, venv installed)" if whole_ci else "all chapters at ci (empty cache)"
    rows[f"{label}, s"] = seconds
    for name, sec in re.findall(r"^(\S+\.ipynb)\s+([\d.]+)", out, flags=re.M):
        rows[f"{Path(name).stem} at ci, s"] = float(sec)
    return rows


TRAIN_LOOP = "1. Training loop overhead (VGG-16 width 1/8 + BN, batch 128)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="run the GPU benchmark (needs CUDA)")
    ap.add_argument("--book", action="store_true", help="also time every chapter at ci (several minutes)")
    ap.add_argument("--ci", action="store_true", help="with --book: time the whole CI command, make test (~15 min)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", help="write the page here (default: BENCHMARKS.md; with --only, print only)")
    ap.add_argument("--json", help="also write the sections as JSON here")
    ap.add_argument("--quick", action="store_true", help="one short section only (tools/gpu_check.sh)")
    ap.add_argument("--only", nargs="+", metavar="N", help="only the CPU sections with these numbers (1, 2, 3, 7, 8), printed")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("BNBOOK_THREADS", "0") or 0) or min(2, os.cpu_count() or 1))
    if args.only:
        cpu_sections = {t.split(".")[0]: (t, fn) for t, fn in
                        [(TRAIN_LOOP, lambda r: bench_train_loop(40, r)), *extra_sections()]}
        if set(args.only) - set(cpu_sections) or args.gpu or args.book or args.quick:
            ap.error(f"--only takes the numbers of CPU sections ({', '.join(cpu_sections)}), not {args.only}, "
                     "and goes without --gpu, --book or --quick")
        chosen = [cpu_sections[n] for n in dict.fromkeys(args.only)]
        text = "\n".join(f"\n## {t}\n\n{table(fn(args.repeats))}\n" for t, fn in chosen)
        if args.out:
            Path(args.out).write_text(text)
        print(text)
        return
    args.out = args.out or str(ROOT / "BENCHMARKS.md")
    if args.ci and not args.book:
        ap.error("--ci times the book's CI run: use it together with --book")
    sections = {}
    if args.quick:
        if args.gpu:
            sections["GPU: VGG-16 training step, AMP + channels_last"] = bench_gpu()
        else:
            sections[TRAIN_LOOP] = bench_train_loop(5, 1)
    elif args.gpu:
        sections["GPU: VGG-16 training step, AMP + channels_last"] = bench_gpu()
        # which metric implementation wins on this GPU, at the gpu profile's full width
        sections["GPU 2. Landscape probes: vmap vs loop"] = bench_probes(args.repeats, "cuda", 1.0)
        sections["GPU 3. ICS for all layers: prefix and vmap vs loop"] = bench_ics(args.repeats, "cuda", 1.0)
    else:
        sections[TRAIN_LOOP] = bench_train_loop(40, args.repeats)
        for title, fn in extra_sections():
            sections[title] = fn(args.repeats)
        sections["4. Data: one epoch of CIFAR-10 training images"] = bench_data(max(3, args.repeats // 2))
        if args.book:
            sections["5. The book: chapter wall times"] = bench_book(args.ci)
    from estimate import markdown as estimate  # bench/estimate.py (this script's directory is on sys.path)
    gpu = sections.get("GPU: VGG-16 training step, AMP + channels_last", {})
    sections["6. Estimated `gpu` runtime on a T4, from FLOP counts"] = estimate(
        gpu["achieved TFLOP/s"] if "T4" in gpu.get("device", "") else None)
    head = (f"# Benchmarks\n\nMeasured {dt.date.today()} on {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads. "
            "Times are medians in seconds of interleaved repeats; produced by `python bench/run.py`.\n")
    text = head + "\n".join(f"\n## {t}\n\n{r if isinstance(r, str) else table(r)}\n" for t, r in sections.items())
    Path(args.out).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"head": head, "sections": sections}, indent=1, default=str))
    print(text)


if __name__ == "__main__":
    main()
