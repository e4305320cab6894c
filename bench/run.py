"""Benchmarks of bnutils, each measured side by side in one run (the machine is shared and noisy), written to
BENCHMARKS.md with the machine, the date, medians and ratios.

    python bench/run.py            # CPU benchmarks (a few minutes)
    python bench/run.py --book     # ... and every chapter's wall time at ci
    python bench/run.py --book --ci  # ... timing the whole CI command (make test) instead of the chapters alone
    python bench/run.py --gpu      # on a CUDA machine: images/s and the fraction of measured matmul throughput

Every run also writes section 6, each chapter's `gpu` runtime on a T4 estimated from FLOP counts (bench/estimate.py,
a few seconds on the meta device); on a T4, --gpu feeds it the measured AMP throughput.

Tests prove that fast and slow paths agree; this script only measures speed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bnutils import data as D  # noqa: E402
from bnutils.models import VGG  # noqa: E402
from bnutils.modes import Hooks  # noqa: E402
from bnutils.train import seed_everything, train  # noqa: E402


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the calls interleaved so background load hits all of them alike, after one
    untimed warm-up call each (first calls pay for allocator growth, kernel selection and cold caches)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)  # GPU work is asynchronous
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def small_cifar(n: int = 2560, device: str = "cpu") -> D.Dataset:
    try:
        return D.load_cifar10(n, 512, device=device)
    except FileNotFoundError:  # no data here: random images of the same shape time the same
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n + 512, 3, 32, 32, generator=g), torch.randint(0, 10, (n + 512,), generator=g)
        return D.Dataset("random", D.Split(x[:n], y[:n]).to(device), D.Split(x[n:], y[n:]).to(device))


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

    arrays = D.cifar10_arrays()
    x_u8, y = arrays["x_train"], arrays["y_train"]
    split = D.Split(D._to_tensor(x_u8), torch.from_numpy(y))
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
    import json
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


def table(rows: dict[str, object]) -> str:
    out = ["| quantity | value |", "|---|---|"]
    for k, v in rows.items():
        out.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="run the GPU benchmark (needs CUDA)")
    ap.add_argument("--book", action="store_true", help="also time every chapter at ci (several minutes)")
    ap.add_argument("--ci", action="store_true", help="with --book: time the whole CI command, make test (~15 min)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    if args.ci and not args.book:
        ap.error("--ci times the book's CI run: use it together with --book")
    torch.set_num_threads(int(os.environ.get("BNBOOK_THREADS", "0") or 0) or min(2, os.cpu_count() or 1))
    sections = {}
    if args.gpu:
        sections["GPU: VGG-16 training step, AMP + channels_last"] = bench_gpu()
        # which metric implementation wins on this GPU, at the gpu profile's full width
        sections["GPU 2. Landscape probes: vmap vs loop"] = bench_probes(args.repeats, "cuda", 1.0)
        sections["GPU 3. ICS for all layers: prefix and vmap vs loop"] = bench_ics(args.repeats, "cuda", 1.0)
    else:
        sections["1. Training loop overhead (VGG-16 width 1/8 + BN, batch 128)"] = bench_train_loop(40, args.repeats)
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
    print(text)


def bench_probes(repeats: int, device: str = "cpu", width: float = 0.125) -> dict[str, float]:
    """Landscape probes (chapter 4): the K probes batched with vmap vs a loop, for the VGG and the deep linear net,
    each in units of one training step (forward + backward) of the same model on the same batch. As in the chapter
    (`LandscapeProbe`), the probes are given the step's own gradient: their cost is what they add to training."""
    from bnutils.metrics import probe_landscape
    from bnutils.models import DeepLinear

    data = small_cifar(512, device)
    x, y = data.train.x[:128], data.train.y[:128]
    dln_data = D.linear_teacher(n=1000, dim=10, device=device)
    rows: dict[str, float] = {}
    for name, model, bx, by, loss in (
            (f"VGG-16 w{width:g} + BN, batch 128", VGG(width=width, norm="batchnorm").to(device), x, y, F.cross_entropy),
            ("DLN 25x10 + BN, 1000 points", DeepLinear(norm="batchnorm").to(device), dln_data.train.x,
             dln_data.train.y, lambda o, t: (o - t).pow(2).sum())):
        def step():
            model.zero_grad()
            loss(model(bx), by).backward()
        step()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        for k in (7, 16):
            etas = list(np.linspace(0.05, 0.4, k))
            t = interleaved({"step": step,
                             "vmap": lambda: probe_landscape(model, bx, by, loss, etas, grads=grads, method="vmap"),
                             "loop": lambda: probe_landscape(model, bx, by, loss, etas, grads=grads, method="loop")},
                            repeats)
            rows[f"{name}, K={k}: loop / vmap (speed-up of batching)"] = t["loop"] / t["vmap"]
            rows[f"{name}, K={k}: vmap cost in training steps"] = t["vmap"] / t["step"]
            rows[f"{name}, K={k}: loop cost in training steps"] = t["loop"] / t["step"]
    return rows


def bench_ics(repeats: int, device: str = "cpu", width: float = 0.125) -> dict[str, float]:
    """ICS for all layers (chapter 2): the shared prefix and vmap over the per-layer parameter sets, each against the
    per-layer loop, as the extra cost per measured step in units of one plain training step, for the VGG (13 conv +
    1 linear) and the DLN (25 layers)."""
    from bnutils.metrics import ICS
    from bnutils.models import DeepLinear

    cifar, dln = small_cifar(1024, device), D.linear_teacher(n=1000, dim=10, device=device)
    rows: dict[str, float] = {}
    for name, make, data, batch, lr in (
            (f"VGG-16 w{width:g} + BN", lambda: VGG(width=width, norm="batchnorm").to(device), cifar, 128, 0.05),
            ("DLN 25x10 + BN", lambda: DeepLinear(norm="batchnorm").to(device), dln, None, 1e-6)):
        def run(method: str | None):
            seed_everything(0)
            model = make()
            cbs = {"ics": ICS(model, every=1, method=method)} if method else None
            train(model, data, steps=6, lr=lr, batch_size=batch, progress=False, callbacks=cbs)

        methods = ("prefix", "vmap", "loop")
        t = interleaved({"plain": lambda: run(None), **{m: (lambda m=m: run(m)) for m in methods}}, repeats)
        extra = {m: t[m] - t["plain"] for m in methods}
        for m in ("prefix", "vmap"):
            rows[f"{name}: loop / {m} (speed-up)"] = extra["loop"] / extra[m]
        for m in methods:
            rows[f"{name}: {m}, extra cost per measured step in training steps"] = extra[m] / t["plain"]
    return rows


THROUGHPUT_NETS = {  # the book's training networks at the cpu profile
    "ResNet-14 width 1/4 (ch5, ch6 sweeps)": lambda: __import__("bnutils.models", fromlist=["ResNet"]).ResNet(14, width=0.25),
    "VGG-16 width 1/8 + BN (ch2-ch4)": lambda: VGG(width=0.125, norm="batchnorm"),
    "ResNet-20 full width (a wider candidate)": lambda: __import__("bnutils.models", fromlist=["ResNet"]).ResNet(20),
}


def _train_steps(net: str, fast: bool, steps: int, threads: int) -> float:
    """Seconds per step of `steps` SGD steps (batch 128) of THROUGHPUT_NETS[net] after 2 untimed ones: the settings
    before (float32, contiguous) or now (`fast`: channels_last and bf16 autocast, as bnutils.train uses them)."""
    torch.set_num_threads(threads)
    seed_everything(0)
    model = THROUGHPUT_NETS[net]()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g)
    if fast:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            loss = F.cross_entropy(model(x).float(), y)
        loss.backward()
        opt.step()

    step(), step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def bench_throughput(repeats: int, steps: int = 20) -> dict[str, object]:
    """Training throughput per CPU minute, side by side in one run: each network before (one process, 2 threads,
    float32) and now (two one-thread processes side by side, as bnutils.parallel runs a sweep, each with
    channels_last + bf16 autocast where the CPU has native bf16). Images per second of the whole machine."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bnutils.train import cpu_bf16

    rows: dict[str, object] = {"native bf16 on this CPU": cpu_bf16()}
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_train_steps, [next(iter(THROUGHPUT_NETS))] * 2, [True] * 2, [1] * 2, [1] * 2))  # warm up
        for net in THROUGHPUT_NETS:
            before, now = [], []
            for _ in range(max(1, repeats // 2)):
                before.append(_train_steps(net, False, steps, 2))
                t0 = time.perf_counter()
                list(pool.map(_train_steps, [net] * 2, [cpu_bf16()] * 2, [steps] * 2, [1] * 2))
                now.append((time.perf_counter() - t0) / (2 * steps))  # wall seconds per step of the machine
            b, n = statistics.median(before), statistics.median(now)
            rows[f"{net}: before, ms/step (img/s)"] = f"{1000 * b:.0f} ({128 / b:.0f})"
            rows[f"{net}: now, ms/step of the machine (img/s)"] = f"{1000 * n:.0f} ({128 / n:.0f})"
            rows[f"{net}: throughput ratio now / before"] = b / n
    return rows


def extra_sections():
    """Benchmarks of the chapter metrics (landscape probes and ICS, batched vs loops) and of training throughput."""
    return [("2. Landscape probes: batched (vmap) vs loop", bench_probes),
            ("3. ICS for all layers: shared prefix and vmap vs loop", bench_ics),
            ("7. Training throughput per CPU minute: before vs now", bench_throughput)]


if __name__ == "__main__":
    main()
