#!/usr/bin/python3
"""eval_weights: an independent check of weights written by `gad train`, with PyTorch.
Loads W.safetensors into torchvision-structured models (the width-scaled VGG16 and
ResNet18 of tools/fixtures/gen_fixtures_train.py; arch, width, hidden and classes from the tensors
and metadata), preprocesses IDX images as gad does (28x28 -> bilinear, half-pixel
centres -> input size; gray to 3 channels; /255; mean/std if the metadata has them)
and prints the accuracy on
  - the held-out part of the data it was trained on (the last val_frac of each class
    in file order, as `gad train` splits it), and
  - optionally an independent test set (--test X-images-idx3-ubyte.gz, e.g. Debian's
    Fashion-MNIST t10k file), restricted to the same classes.
    /usr/bin/python3 tools/data/eval_weights.py weights/vgg16.safetensors \\
        [--test /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz]
Only for IDX data (what the bundled weights are trained on)."""
import argparse
import gzip
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needs  # noqa: E402
needs.modules("numpy", "torch")

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import stio  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures"))
from gen_fixtures_train import ResNet18, VGG16  # noqa: E402


def read_idx(path):
    data = gzip.open(path, "rb").read() if path.endswith(".gz") else open(path, "rb").read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


def labels_path(images):
    return images.replace("-images-idx3-ubyte", "-labels-idx1-ubyte")


def build(tensors, meta):
    k = tensors["fc.weight" if "fc.weight" in tensors else "classifier.6.weight"].shape[0]
    width = float(meta["width"])
    if meta["arch"] == "vgg16":
        model = VGG16(width, int(meta["hidden"]), k)
    else:
        model = ResNet18(width, k)
    model.load_state_dict({n: torch.tensor(v) for n, v in tensors.items()})
    return model.eval()


def prep(images, size, meta):
    x = torch.tensor(images, dtype=torch.float32)[:, None] / 255.0
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.repeat(1, 3, 1, 1)
    if "mean" in meta:
        mean = torch.tensor([float(v) for v in meta["mean"].split(",")])[None, :, None, None]
        std = torch.tensor([float(v) for v in meta["std"].split(",")])[None, :, None, None]
        x = (x - mean) / std
    return x


def accuracy(model, x, y):
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return (pred.numpy() == y).mean()


def pick(images, labels, classes):
    keep = np.isin(labels, classes)
    y = np.array([classes.index(v) for v in labels[keep]])
    return images[keep], y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--test")
    a = ap.parse_args()
    tensors, meta = stio.load(a.weights)
    model = build(tensors, meta)
    size = int(meta["input_size"].split("x")[1])
    classes = [int(c) for c in meta["data_classes"].split(",")]
    imgs, y = pick(read_idx(meta["data"]), read_idx(labels_path(meta["data"])), classes)
    frac = float(meta["val_frac"])
    held = np.zeros(len(y), bool)
    for c in range(len(classes)):
        idx = np.nonzero(y == c)[0]
        nh = int(np.floor(len(idx) * frac + 0.5))
        held[idx[len(idx) - nh:]] = True
    print("%s: %s width %s, classes %s" % (a.weights, meta["arch"], meta["width"], meta.get("classes")))
    print("  held-out (%d images): accuracy %.4f (gad train says %s)" %
          (held.sum(), accuracy(model, prep(imgs[held], size, meta), y[held]), meta.get("val_accuracy")))
    if a.test:
        ti, ty = pick(read_idx(a.test), read_idx(labels_path(a.test)), classes)
        print("  test %s (%d images): accuracy %.4f" % (os.path.basename(a.test), len(ty),
                                                        accuracy(model, prep(ti, size, meta), ty)))


if __name__ == "__main__":
    main()
