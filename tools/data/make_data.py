#!/usr/bin/python3
"""make_data: build the bundled data/ from Debian's dataset-fashion-mnist package.

Two Fashion-MNIST classes that look alike, Pullover (label 2) and Coat (label 4):
the first 1500 images of each, in the order they appear in the training file,
written as gzip'd IDX files that keep the original labels:
    data/fashion-pc-images-idx3-ubyte.gz   [3000, 28, 28] u8
    data/fashion-pc-labels-idx1-ubyte.gz   [3000] u8 (2 or 4)
    data/fashion-pc-classes.txt            the ten class names, line i = label i
    data/LICENSE-fashion-mnist.txt         the dataset's MIT (Expat) licence notice
The output is deterministic (gzip mtime 0, no file name). With val_frac 0.2 the
held-out part is the last 300 images of each class.
    /usr/bin/python3 tools/data/make_data.py [--src DIR] [--out data]"""
import argparse
import gzip
import io
import os
import struct
import subprocess

import sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needs  # noqa: E402
needs.modules("numpy")

import numpy as np

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
KEEP = (2, 4)
PER_CLASS = 1500
COPYRIGHT = "/usr/share/doc/dataset-fashion-mnist/copyright"


def find_src():
    d = "/usr/share/datasets/fashion-mnist"
    if os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
        return d
    out = subprocess.check_output(["dpkg", "-L", "dataset-fashion-mnist"], text=True).split()
    return os.path.dirname(next(p for p in out if p.endswith("train-images-idx3-ubyte.gz")))


def read_idx(path):
    data = gzip.open(path, "rb").read()
    zero, dtype, nd = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 8, path
    dims = struct.unpack(">" + "I" * nd, data[4:4 + 4 * nd])
    a = np.frombuffer(data, np.uint8, offset=4 + 4 * nd)
    assert a.size == int(np.prod(dims)), path
    return a.reshape(dims)


def write_atomic(path, data):
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as g:
        g.write(data)
    return buf.getvalue()


def idx_bytes(a):
    return struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=None)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data"))
    args = ap.parse_args()
    src = args.src or find_src()
    x = read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))
    assert len(x) == len(y)
    keep = np.zeros(len(y), bool)
    for c in KEEP:
        keep[np.flatnonzero(y == c)[:PER_CLASS]] = True
    idx = np.flatnonzero(keep)  # file order, the two classes interleaved as in the source
    xs, ys = np.ascontiguousarray(x[idx]), np.ascontiguousarray(y[idx])
    for c in KEEP:
        assert (ys == c).sum() == PER_CLASS
    os.makedirs(args.out, exist_ok=True)
    files = {
        "fashion-pc-images-idx3-ubyte.gz": gz(idx_bytes(xs)),
        "fashion-pc-labels-idx1-ubyte.gz": gz(idx_bytes(ys)),
        "fashion-pc-classes.txt": ("\n".join(CLASSES) + "\n").encode(),
        "LICENSE-fashion-mnist.txt": (
            "The images in fashion-pc-*-ubyte.gz are a subset of Fashion-MNIST\n"
            "(https://github.com/zalandoresearch/fashion-mnist): the first %d Pullover (label 2)\n"
            "and %d Coat (label 4) images of the training set, taken from Debian's\n"
            "dataset-fashion-mnist package by tools/data/make_data.py. Its licence notice\n"
            "(%s) follows.\n\n" % (PER_CLASS, PER_CLASS, COPYRIGHT)).encode() + open(COPYRIGHT, "rb").read(),
    }
    total = 0
    for name, data in files.items():
        write_atomic(os.path.join(args.out, name), data)
        total += len(data)
        print("%-36s %9d bytes" % (name, len(data)))
    print("total %d bytes; source indices %d..%d of %d" % (total, idx[0], idx[-1], len(y)))


if __name__ == "__main__":
    main()
