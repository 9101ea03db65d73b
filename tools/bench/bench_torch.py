#!/usr/bin/python3
"""bench_torch: the cases of `gad bench` run in PyTorch, for a side-by-side comparison
(tools/bench/bench_compare.sh runs both and prints the ratios).

Cases: sgemm (torch.mm, i.e. the BLAS torch is linked to) at 1024^3 and 4096^3; the
GAD-shaped cases (model gad, 32x32, two outputs: support_step at batch 32 and 64,
ig_pass at batch 128 as gad run's maps take it, for width-0.125 models shaped as the
bundled ones and full-width ones; see gad bench --help); for
torchvision's vgg16 and resnet18 (random weights, 1000 classes) at 32x32 batch 32 and
224x224 batch 1 and 8: forward (eval, no_grad), input_grad (eval forward + backward to
the input only; parameters do not require grad) and train_step (train mode, MSE loss,
backward, Adam step). Same timing as gad: warm-up, then at least --min-time seconds and
3 runs (at most --repeats), median. GFLOP/s uses the same multiply-add counts as gad.

Threads: --threads N sets torch.set_num_threads(N) and, before torch is imported,
OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS. The BLAS in use (OpenBLAS
core name, e.g. Haswell = AVX2 kernels, SkylakeX/Cooperlake = AVX-512) is printed
(threadpoolctl if installed, else openblas_get_corename through ctypes).
Environment variables that matter (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE, glibc's
MALLOC_* and GLIBC_TUNABLES) are taken as given: bench_compare.sh runs this script
under each setting. --label names the setting in the output.

  /usr/bin/python3 tools/bench/bench_torch.py [--model vgg16|resnet18|sgemm|all] [--pass P]
      [--size S] [--batch B] [--threads N] [--json] [--min-time SEC] [--repeats R]
      [--label NAME]

Not for: correctness checks (the fixture generators), GPU.
"""
import argparse
import ctypes
import os
import resource
import sys
import time


# gad bench's GAD-shaped cases: name, architecture, width, VGG's hidden size
GAD_MODELS = [("vgg16-w0.125", "vgg16", 0.125, 128), ("resnet18-w0.125", "resnet18", 0.125, 0),
              ("vgg16-2cls", "vgg16", 1.0, 4096), ("resnet18-2cls", "resnet18", 1.0, 0)]


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="all", choices=["vgg16", "resnet18", "sgemm", "gad", "all"] +
                    [m[0] for m in GAD_MODELS])
    ap.add_argument("--pass", dest="pass_", default="all",
                    choices=["forward", "input_grad", "train_step", "sgemm", "support_step", "ig_pass", "all"])
    ap.add_argument("--size", type=int, default=0, help="32, 224, 1024 or 4096 (default all)")
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="default: the online cores")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (oneDNN JIT)")
    ap.add_argument("--label", default="default")
    return ap.parse_args()


ARGS = parse()
THREADS = ARGS.threads if ARGS.threads > 0 else (os.cpu_count() or 1)
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needs  # noqa: E402
needs.modules("torch", "torchvision")

import torch  # noqa: E402  (after the thread variables)
import torchvision  # noqa: E402

torch.set_num_threads(THREADS)


def blas_info():
    """Which BLAS (and OpenBLAS core) torch.mm will use."""
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # make sure the BLAS is loaded
    try:
        from threadpoolctl import threadpool_info
        for d in threadpool_info():
            if d.get("user_api") == "blas":
                return "%s %s core=%s threads=%s" % (d.get("internal_api"), d.get("version"),
                                                    d.get("architecture"), d.get("num_threads"))
    except ImportError:
        pass
    with open("/proc/self/maps") as f:
        libs = sorted({line.split()[-1] for line in f if "blas" in line and ".so" in line})
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            return "openblas core=%s (%s)" % (h.openblas_get_corename().decode(), lib)
        except (OSError, AttributeError):
            continue
    return "no OpenBLAS found (%s)" % (", ".join(libs) or "no BLAS library mapped")


def max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_case(fn):
    for _ in range(ARGS.warmup):
        fn()
    ts, total = [], 0.0
    while len(ts) < ARGS.repeats and (len(ts) < 3 or total < ARGS.min_time):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
        total += ts[-1]
    ts.sort()
    n = len(ts)
    return (ts[n // 2] if n % 2 else 0.5 * (ts[n // 2 - 1] + ts[n // 2])), n


def report(model, pass_, size, batch, sec, flops, reps):
    ips = batch / sec
    gf = flops / sec / 1e9
    if ARGS.json:
        import json
        print(json.dumps({"model": model, "pass": pass_, "size": size, "batch": batch, "threads": THREADS,
                          "images_per_s": None if model == "sgemm" else round(ips, 3),
                          "gflops": round(gf, 2), "ms": round(sec * 1e3, 3), "reps": reps,
                          "max_rss_mb": round(max_rss_mb(), 1), "engine": "torch", "env": ARGS.label}))
    else:
        ipss = "-" if model == "sgemm" else "%.2f" % ips
        print("%-9s %-11s %-8s %5d %7d %12s %9.1f %10.2f" % (model, pass_, size, batch, THREADS, ipss, gf,
                                                          sec * 1e3))
    sys.stdout.flush()


def want(filt, v):
    return filt == "all" or filt == v


def conv_macs(cin, cout, k, ho, wo):
    return float(cin) * cout * k * k * ho * wo


def vgg16_macs(h, w, classes):
    macs, c = 0.0, 3
    for v in (64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0):
        if v == 0:
            h //= 2
            w //= 2
            continue
        macs += conv_macs(c, v, 3, h, w)
        c = v
    return macs + 512.0 * 7 * 7 * 4096 + 4096.0 * 4096 + 4096.0 * classes


def resnet18_macs(H, W, classes):
    h, w = (H + 6 - 7) // 2 + 1, (W + 6 - 7) // 2 + 1
    macs = conv_macs(3, 64, 7, h, w)
    h, w = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
    c = 64
    for s in range(4):
        for b in range(2):
            cout, stride = 64 << s, (2 if s > 0 and b == 0 else 1)
            ho, wo = (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1
            macs += conv_macs(c, cout, 3, ho, wo) + conv_macs(cout, cout, 3, ho, wo)
            if stride != 1 or c != cout:
                macs += conv_macs(c, cout, 1, ho, wo)
            c, h, w = cout, ho, wo
    return macs + 512.0 * classes


def bench_sgemm():
    g = torch.Generator().manual_seed(1)
    for n in (1024, 4096):
        if (ARGS.size and ARGS.size != n) or (ARGS.batch and ARGS.batch != 1):
            continue
        a = torch.randn(n, n, generator=g)
        b = torch.randn(n, n, generator=g)
        c = torch.empty(n, n)
        sec, reps = time_case(lambda: torch.mm(a, b, out=c))
        report("sgemm", "sgemm", str(n), 1, sec, 2.0 * n ** 3, reps)


def bench_model(name):
    shapes = [(32, 32), (224, 1), (224, 8)]
    passes = [("forward", 1.0), ("input_grad", 2.0), ("train_step", 3.0)]
    todo = [(hw, n) for hw, n in shapes
            if (not ARGS.size or ARGS.size == hw) and (not ARGS.batch or ARGS.batch == n)]
    if not todo or not any(want(ARGS.pass_, p) for p, _ in passes):
        return
    torch.manual_seed(1)
    K = 1000
    model = getattr(torchvision.models, name)(num_classes=K)
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)
    mse = torch.nn.MSELoss()
    g = torch.Generator().manual_seed(2)
    for hw, n in todo:
        x = torch.randn(n, 3, hw, hw, generator=g)
        target = 0.1 * torch.randn(n, K, generator=g)
        onehot = torch.zeros(n, K)
        onehot[torch.arange(n), torch.arange(n) % K] = 1.0
        macs = (vgg16_macs if name == "vgg16" else resnet18_macs)(hw, hw, K)

        def forward():
            model.eval()
            with torch.no_grad():
                model(x)

        def input_grad():
            model.eval()
            xi = x.clone().requires_grad_(True)
            out = model(xi)
            torch.autograd.grad(out, xi, grad_outputs=onehot)

        def train_step():
            model.train()
            opt.zero_grad(set_to_none=True)
            loss = mse(model(x), target)
            loss.backward()
            opt.step()

        for pname, mult in passes:
            if not want(ARGS.pass_, pname):
                continue
            for p in model.parameters():
                p.requires_grad_(pname == "train_step")
            fn = {"forward": forward, "input_grad": input_grad, "train_step": train_step}[pname]
            sec, reps = time_case(fn)
            report(name, pname, "%dx%d" % (hw, hw), n, sec, 2.0 * macs * n * mult, reps)


def forward_macs(model, x):
    """Multiply-adds of one image's forward pass through the Conv2d and Linear layers."""
    total = [0.0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            total[0] += float(mod.in_channels) * mod.kernel_size[0] * mod.kernel_size[1] * out[0].numel()
        else:
            total[0] += float(mod.in_features) * mod.out_features
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()
        model(x[:1])
    for h in hs:
        h.remove()
    return total[0]


GAD_CASES = (("support_step", 32), ("support_step", 64), ("ig_pass", 128))


def bench_gad():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures"))
    from gen_fixtures_train import ResNet18, VGG16
    hw, K = 32, 2
    cases = [(p, n) for p, n in GAD_CASES if want(ARGS.pass_, p) and (not ARGS.batch or ARGS.batch == n)]
    if (ARGS.size and ARGS.size != hw) or not cases:
        return
    nmax = max(n for _, n in cases)
    for name, arch, width, hidden in GAD_MODELS:
        if not (want(ARGS.model, "gad") or ARGS.model == name):
            continue
        torch.manual_seed(1)
        if width == 1.0:
            model = getattr(torchvision.models, arch)(num_classes=K)
        else:
            model = VGG16(width, hidden, K) if arch == "vgg16" else ResNet18(width, K)
        opt = torch.optim.Adam(model.parameters(), lr=4e-5)
        mse = torch.nn.MSELoss()
        g = torch.Generator().manual_seed(3)
        xs = torch.rand(nmax, 3, hw, hw, generator=g)
        targets = 2.0 * torch.randn(nmax, K, generator=g)
        onehots = torch.zeros(nmax, K)
        onehots[torch.arange(nmax), torch.arange(nmax) % K] = 1.0
        macs = forward_macs(model, xs[:1])

        for pname, n in cases:
            x, target, onehot = xs[:n].contiguous(), targets[:n].contiguous(), onehots[:n].contiguous()

            def support_step():  # gad's support training: eval mode, MSE, Adam
                model.eval()
                opt.zero_grad(set_to_none=True)
                loss = mse(model(x), target)
                loss.backward()
                opt.step()

            def ig_pass():  # Captum's IG: a batch of scaled inputs, gradient to the input
                model.eval()
                xi = x.clone().requires_grad_(True)
                out = model(xi)
                torch.autograd.grad(out, xi, grad_outputs=onehot)

            fn, mult = (support_step, 3.0) if pname == "support_step" else (ig_pass, 2.0)
            for p in model.parameters():
                p.requires_grad_(pname == "support_step")
            sec, reps = time_case(fn)
            report(name, pname, "32x32", n, sec, 2.0 * macs * n * mult, reps)


def main():
    info = blas_info()
    env = " ".join("%s=%s" % (k, os.environ[k]) for k in
                   ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                    "MALLOC_TOP_PAD_", "GLIBC_TUNABLES") if k in os.environ)
    msg = "torch %s, %d threads, BLAS: %s; env [%s]: %s" % (torch.__version__, THREADS, info, ARGS.label,
                                                          env or "(none of the tuning variables set)")
    print(("# " if ARGS.json else "") + msg, file=sys.stderr if ARGS.json else sys.stdout)
    if not ARGS.json:
        print("%-9s %-11s %-8s %5s %7s %12s %9s %10s" % ("model", "pass", "size", "batch", "threads", "images/s",
                                                         "GFLOP/s", "ms"))
    if want(ARGS.model, "sgemm") and want(ARGS.pass_, "sgemm"):
        bench_sgemm()
    for name in ("vgg16", "resnet18"):
        if want(ARGS.model, name):
            bench_model(name)
    bench_gad()


if __name__ == "__main__":
    main()
