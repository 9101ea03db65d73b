#!/usr/bin/python3
"""bench_torch_layers: PyTorch's time for each distinct 3x3 stride-1 convolution of
vgg16 or resnet18 alone (forward, and the input gradient), to set beside gad's
per-layer times (`./gad bench --layers --model M --size 224 --batch 8`) and see which
layers a whole-model ratio hides.

  /usr/bin/python3 tools/bench/bench_torch_layers.py [--model vgg16|resnet18] [--batch B]
      [--threads N] [--reps R]

Run it in the environment PyTorch does best in (see tools/bench/bench_compare.sh):
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE MALLOC_MMAP_THRESHOLD_=4294967296 \
      MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=1073741824 \
      GLIBC_TUNABLES=glibc.malloc.hugetlb=1 /usr/bin/python3 tools/bench/bench_torch_layers.py
Input gradient = (forward + backward to the input, weights frozen) - forward, the
median of R timed runs after two warm-ups each. Not for: strided or 1x1 layers, dw.
"""
import argparse
import os
import time

SHAPES = {  # (in channels, out channels, map side) at 224x224 input
    "vgg16": [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
              (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 14)],
    "resnet18": [(64, 64, 56), (128, 128, 28), (256, 256, 14), (512, 512, 7)],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="vgg16", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import torch  # after the thread variables
    torch.set_num_threads(a.threads)

    def median_ms(f):
        f()
        f()
        ts = []
        for _ in range(a.reps):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 2] * 1e3

    print("%s batch %d threads %d (torch %s)" % (a.model, a.batch, a.threads, torch.__version__))
    print("%-16s %10s %9s %10s %9s" % ("layer", "fwd ms", "GFLOP/s", "dx ms", "GFLOP/s"))
    for ci, co, h in SHAPES[a.model]:
        conv = torch.nn.Conv2d(ci, co, 3, padding=1)
        conv.requires_grad_(False)
        x = torch.randn(a.batch, ci, h, h)
        with torch.no_grad():
            fwd = median_ms(lambda: conv(x))
        xr = x.clone().requires_grad_(True)
        dy = torch.randn(a.batch, co, h, h)

        def fwd_bwd():
            xr.grad = None
            conv(xr).backward(dy)
        dx = median_ms(fwd_bwd) - fwd
        gf = 2.0 * ci * co * 9 * h * h * a.batch / 1e9
        print("%4d->%4d %3dx%-3d %10.2f %9.1f %10.2f %9.1f" % (ci, co, h, h, fwd, gf / fwd * 1e3, dx,
                                                              gf / dx * 1e3))


if __name__ == "__main__":
    main()
