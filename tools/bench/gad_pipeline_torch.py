#!/usr/bin/python3
"""gad_pipeline_torch: the compute of one `gad run` model in PyTorch, phase by phase,
to set beside the phase times gad writes to results.json (issue 18 item 5).

The work, as gad run does it for one original model and two classes:
  targets   the original's logits over the training images (eval, batch --batch)
  supports  per alpha, a copy of the original trained --epochs on those images at
            --batch: eval-mode forward, MSE against the distanced logits (the
            class's own output lowered by alpha), backward, Adam (lr 4e-5)
  maps      for the original and every support, --images images x 2 targets x 5
            methods: Saliency (|dL/dx|), Deconvolution and Guided Backprop (ReLU's
            backward replaced by their rules), Gradient x Input, Integrated
            Gradients (--ig-steps scaled inputs from the black image, Captum's
            default Gauss-Legendre nodes; the scaled inputs of --ig-batch images per
            batch)
The images are random tensors of the data's shape: timing only, no maps are kept or
compared (the fixture tests check the numbers). The model is the same file gad runs
(--weights, written by tools/data/export_torchvision.py), or a fresh torchvision one.

  /usr/bin/python3 tools/bench/gad_pipeline_torch.py --weights R.safetensors \\
      [--train-images 11880] [--images 64] [--alphas 2,4] [--epochs 1] [--batch 64]
      [--ig-steps 50] [--size 32] [--threads N] [--json]

Prints the seconds of each phase and of the whole (process CPU time and wall time).
Compare under PyTorch's best environment, bench_compare.sh's auto+malloc (the OpenBLAS
tuning variables unset, glibc keeping freed memory): its training is about twice as
fast there as under OPENBLAS_CORETYPE=Haswell (docs/perf.md).
Not for: correctness; the report, hulls and metrics (gad's own, cheap next to these).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default="", help="safetensors of a torchvision vgg16/resnet18 (else resnet18, seed 0)")
    ap.add_argument("--arch", default="resnet18", choices=["resnet18", "vgg16"])
    ap.add_argument("--outputs", type=int, default=2)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--train-images", type=int, default=11880)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--alphas", default="2,4")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--ig-steps", type=int, default=50)
    ap.add_argument("--ig-batch", type=int, default=8, help="images whose scaled inputs share a batch")
    ap.add_argument("--threads", type=int, default=0, help="default: the online cores")
    ap.add_argument("--json", action="store_true")
    return ap.parse_args()


ARGS = parse()
THREADS = ARGS.threads or len(os.sched_getaffinity(0))
for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[v] = str(THREADS)
import needs  # noqa: E402
needs.modules("numpy", "torch", "torchvision")
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

torch.set_num_threads(THREADS)


class RuleReLU(torch.autograd.Function):
    """ReLU whose backward follows a rule: standard, deconv (dy > 0) or guided (both)."""

    @staticmethod
    def forward(ctx, x, rule):
        ctx.rule = rule
        y = x.clamp(min=0)
        ctx.save_for_backward(x)
        return y

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconv":
            return dy.clamp(min=0), None
        g = dy * (x > 0)
        return (g.clamp(min=0) if ctx.rule == "guided" else g), None


class Relu(torch.nn.Module):
    rule = "standard"

    def forward(self, x):
        return RuleReLU.apply(x, Relu.rule)


def make_model():
    m = getattr(torchvision.models, ARGS.arch)(num_classes=ARGS.outputs)
    if ARGS.weights:
        import stio
        sd = {k: torch.from_numpy(np.array(v)) for k, v in stio.load(ARGS.weights)[0].items()}
        m.load_state_dict(sd)
    else:
        torch.manual_seed(0)
    for name, mod in list(m.named_modules()):  # every ReLU through the rule (resnet reuses one per block)
        for cname, c in list(mod.named_children()):
            if isinstance(c, torch.nn.ReLU):
                setattr(mod, cname, Relu())
    return m.eval()


def input_grad(model, x, onehot, rule="standard"):
    Relu.rule = rule
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(xi), xi, grad_outputs=onehot)
    Relu.rule = "standard"
    return g


def maps(model, x, K):
    n = x.shape[0]
    nodes, weights = np.polynomial.legendre.leggauss(ARGS.ig_steps)
    alphas = torch.tensor(0.5 * (nodes + 1), dtype=torch.float32)
    wts = torch.tensor(0.5 * weights, dtype=torch.float32)
    for p in model.parameters():
        p.requires_grad_(False)
    for t in range(K):
        onehot = torch.zeros(n, K)
        onehot[:, t] = 1.0
        g = input_grad(model, x, onehot)
        _ = g.abs()                     # Saliency
        _ = g * x                       # Gradient x Input
        input_grad(model, x, onehot, "deconv")
        input_grad(model, x, onehot, "guided")
        for i0 in range(0, n, ARGS.ig_batch):  # Integrated Gradients from the black image (0 here)
            xb = x[i0:i0 + ARGS.ig_batch]
            m = xb.shape[0]
            xs = (alphas.view(-1, 1, 1, 1, 1) * xb.unsqueeze(0)).reshape(-1, *xb.shape[1:])
            oh = torch.zeros(xs.shape[0], K)
            oh[:, t] = 1.0
            gs = input_grad(model, xs, oh).view(ARGS.ig_steps, m, *xb.shape[1:])
            _ = xb * (wts.view(-1, 1, 1, 1, 1) * gs).sum(0)


def clocks():
    return time.process_time(), time.perf_counter()


def main():
    K, hw = ARGS.outputs, ARGS.size
    g = torch.Generator().manual_seed(3)
    xtrain = torch.rand(ARGS.train_images, 3, hw, hw, generator=g)
    ytrain = torch.arange(ARGS.train_images) % K
    xmaps = torch.rand(ARGS.images, 3, hw, hw, generator=g)
    alphas = [float(a) for a in ARGS.alphas.split(",")]
    orig = make_model()
    phases = {}
    t0 = clocks()

    c = clocks()
    with torch.no_grad():
        logits = torch.cat([orig(xtrain[i:i + ARGS.batch]) for i in range(0, ARGS.train_images, ARGS.batch)])
    phases["targets"] = [a - b for a, b in zip(clocks(), c)]

    c = clocks()
    supports = []
    for a in alphas:
        sup = make_model()
        sup.load_state_dict(orig.state_dict())
        sup.eval()
        target = logits.clone()
        target[torch.arange(ARGS.train_images), ytrain] -= a
        opt = torch.optim.Adam(sup.parameters(), lr=4e-5)
        mse = torch.nn.MSELoss()
        order = torch.Generator().manual_seed(0)
        for _ in range(ARGS.epochs):
            perm = torch.randperm(ARGS.train_images, generator=order)
            for i in range(0, ARGS.train_images, ARGS.batch):
                idx = perm[i:i + ARGS.batch]
                opt.zero_grad(set_to_none=True)
                loss = mse(sup(xtrain[idx]), target[idx])
                loss.backward()
                opt.step()
        supports.append(sup)
    phases["supports"] = [a - b for a, b in zip(clocks(), c)]

    c = clocks()
    for m in [orig] + supports:
        maps(m, xmaps, K)
    phases["maps"] = [a - b for a, b in zip(clocks(), c)]
    phases["total"] = [a - b for a, b in zip(clocks(), t0)]

    head = "torch %s, %d threads, %s %d outputs %dx%d, %d training images, %d supports x %d epochs at batch %d, " \
           "%d images x %d targets x 5 methods x %d models, IG %d steps" % (
               torch.__version__, THREADS, ARGS.arch, K, hw, hw, ARGS.train_images, len(alphas), ARGS.epochs,
               ARGS.batch, ARGS.images, K, 1 + len(alphas), ARGS.ig_steps)
    tuning = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
              if v in os.environ]
    head += "; env: " + (", ".join("%s=%s" % (v, os.environ[v]) for v in tuning) or "no tuning variables")
    if ARGS.json:
        print(json.dumps({"engine": "torch", "setup": head, "phases": {k: {"cpu": v[0], "wall": v[1]}
                                                                        for k, v in phases.items()}}))
    else:
        print(head)
        for k, (cpu, wall) in phases.items():
            print("%-9s cpu %8.1f s  wall %8.1f s" % (k, cpu, wall))


if __name__ == "__main__":
    main()
