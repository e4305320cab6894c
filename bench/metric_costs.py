"""Benchmarks of the chapter metrics (landscape probes, ICS: batched vs loops) and of training throughput per CPU
minute and of torch.compile; sections 2, 3, 7 and 8 of BENCHMARKS.md (`python bench/run.py`)."""
from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from timing import interleaved, small_cifar  # bench/ is on sys.path (bench/run.py's directory)
from bnutils import data as D
from bnutils.models import VGG
from bnutils.train import seed_everything, train


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


def _train_steps(net: str, fast: bool, steps: int, threads: int, compiled: bool = False,
                 channels_last: bool | None = None) -> float:
    """Seconds per step of `steps` SGD steps (batch 128) of THROUGHPUT_NETS[net] after 2 untimed ones: the settings
    before (float32, contiguous) or now (`fast`: channels_last and bf16 autocast, as bnutils.train uses them);
    `channels_last` overrides the layout, `compiled` trains through torch.compile(model)."""
    torch.set_num_threads(threads)
    seed_everything(0)
    model = THROUGHPUT_NETS[net]()
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 3, 32, 32, generator=g), torch.randint(0, 10, (128,), generator=g)
    if fast if channels_last is None else channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if compiled else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            loss = F.cross_entropy(forward(x).float(), y)
        loss.backward()
        opt.step()

    step(), step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps


def _compiled_steps(net: str, fast: bool, steps: int, channels_last: bool) -> tuple[float, float]:
    """In a fresh process (no compiled code to reuse but the on-disk cache): (seconds to the first two compiled
    steps, seconds per step after them), one thread."""
    t0 = time.perf_counter()
    per_step = _train_steps(net, fast, steps, 1, compiled=True, channels_last=channels_last)
    return time.perf_counter() - t0 - steps * per_step, per_step


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


def bench_compile(repeats: int, steps: int = 20) -> dict[str, object]:
    """torch.compile for the book's small networks, one thread, one process at a time: eager vs compiled training
    step in each memory layout, with bf16 autocast where the CPU has native bf16, and what compiling costs once per
    process and network (a sweep's worker pays it for each network it trains)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from bnutils.train import cpu_bf16

    fast = cpu_bf16()
    rows: dict[str, object] = {"native bf16 on this CPU (autocast on)": fast}
    for net in list(THROUGHPUT_NETS)[:2]:
        for layout, cl in (("contiguous", False), ("channels_last", True)):
            eager, comp, warm = [], [], []
            for _ in range(max(1, repeats // 2)):
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    eager.append(pool.submit(_train_steps, net, fast, steps, 1, False, cl).result())
                with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                    w, c = pool.submit(_compiled_steps, net, fast, steps, cl).result()
                comp.append(c)
                warm.append(w)
            e, c = statistics.median(eager), statistics.median(comp)
            rows[f"{net}, {layout}: eager / compiled, ms/step"] = f"{1000 * e:.0f} / {1000 * c:.0f}"
            rows[f"{net}, {layout}: speed-up of compiled"] = e / c
            rows[f"{net}, {layout}: compiling, s per process (first / median)"] = f"{warm[0]:.0f} / {statistics.median(warm):.0f}"
    return rows


def extra_sections():
    """Benchmarks of the chapter metrics (landscape probes and ICS, batched vs loops), of training throughput and of
    torch.compile."""
    return [("2. Landscape probes: batched (vmap) vs loop", bench_probes),
            ("3. ICS for all layers: shared prefix and vmap vs loop", bench_ics),
            ("7. Training throughput per CPU minute: before vs now", bench_throughput),
            ("8. torch.compile on the CPU: eager vs compiled training step", bench_compile)]
