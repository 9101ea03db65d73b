#!/usr/bin/python3
"""check_full_models: full-width torchvision vgg16 and resnet18 against `./gad predict`.

For each architecture: a torchvision model with its own random initialisation
(torch.manual_seed(SEED), 1000 classes; for resnet18 the BN running statistics are
also randomised so that eval-mode BN is not the identity), exported to safetensors
in a temporary directory with tools/stio.py; random inputs [2,3,224,224] and
[2,3,40,48] saved as .npy; `./gad predict --weights W --input X --out L.npy` run on
each; the logits compared with torchvision's (eval mode, float32) and the max
absolute error, the max error relative to max|logit| and the worst per-element
relative error printed. The weight files (~530 MB for vgg16) are deleted afterwards.

Run from the repository root after `make`:  /usr/bin/python3 tools/checks/check_full_models.py
Exit status 1 if an error exceeds the tolerance (1e-4 relative to max|logit|)."""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needs  # noqa: E402
needs.modules("numpy", "torch", "torchvision")

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import stio  # noqa: E402

SEED = 0
TOL = 1e-4


def build(arch):
    torch.manual_seed(SEED)
    m = getattr(torchvision.models, arch)(num_classes=1000)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.2)
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def main():
    gad = os.path.abspath("gad")
    if not os.path.exists(gad):
        sys.exit("check_full_models: ./gad not found; run make first (from the repository root)")
    torch.set_num_threads(2)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="gad_full_") as tmp:
        for arch in ("vgg16", "resnet18"):
            m = build(arch)
            w = os.path.join(tmp, arch + ".safetensors")
            stio.save(w, m.state_dict(), {"arch": arch})
            for shape in ((2, 3, 224, 224), (2, 3, 40, 48)):
                g = torch.Generator().manual_seed(SEED + shape[2])
                x = torch.randn(*shape, generator=g)
                xp, op = os.path.join(tmp, "x.npy"), os.path.join(tmp, "logits.npy")
                np.save(xp, x.numpy())
                with torch.no_grad():
                    ref = m(x).numpy().astype(np.float64)
                t0 = time.time()
                r = subprocess.run([gad, "predict", "--weights", w, "--input", xp, "--out", op, "--batch", "2"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                dt = time.time() - t0
                if r.returncode != 0:
                    print("%s %s: gad predict failed: %s" % (arch, shape, r.stderr.strip()))
                    bad = 1
                    continue
                got = np.load(op).astype(np.float64)
                d = np.abs(got - ref)
                scale = np.abs(ref).max()
                rel = d.max() / scale
                elem = (d / np.maximum(np.abs(ref), 1e-3 * scale)).max()
                same_top = (got.argmax(1) == ref.argmax(1)).all()
                print("%-8s %-16s max|logit| %.4g  max abs err %.3g  max err / max|logit| %.3g  "
                      "worst elementwise rel %.3g  argmax %s  (gad predict %.1fs)"
                      % (arch, "x".join(map(str, shape)), scale, d.max(), rel, elem,
                         "same" if same_top else "DIFFERS", dt))
                if not rel <= TOL:
                    bad = 1
            os.remove(w)
    sys.exit(bad)


if __name__ == "__main__":
    main()
