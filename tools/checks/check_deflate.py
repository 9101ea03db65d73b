#!/usr/bin/python3
"""check_deflate: one-off cross-check of gad's zlib/gzip/PNG code against Python's
zlib, gzip and PIL (the C tests only round-trip gad against itself and read
fixtures). Builds tools/checks/zpipe.c against build/libgad.a (run `make` first), then:
  - our zlib/gzip output, levels 0..9, on varied inputs -> zlib.decompress / gzip.decompress
  - Python's zlib/gzip output (levels 0..9, strategies) -> our decoder
  - our PNG writer (gray, gray+alpha, RGB, RGBA) -> PIL.Image.open
Prints sizes and ratios; exits 1 on any mismatch.
    /usr/bin/python3 tools/checks/check_deflate.py"""
import gzip
import io
import os
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needs  # noqa: E402
needs.modules("numpy", "PIL")

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXE = os.path.join(ROOT, "build", "zpipe")


def build():
    cmd = ["cc", "-std=c99", "-O2", "-Iinclude", "-o", EXE, "tools/checks/zpipe.c", "build/libgad.a", "-lm", "-lpthread"]
    subprocess.check_call(cmd, cwd=ROOT)


def run(args, data):
    p = subprocess.run([EXE] + args, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode:
        raise RuntimeError("zpipe %s: %s" % (args, p.stderr.decode().strip()))
    return p.stdout


def inputs():
    rng = np.random.default_rng(0)
    text = open(os.path.join(ROOT, "src", "io", "inflate.c"), "rb").read()
    fm = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
    d = {
        "empty": b"",
        "one": b"a",
        "zeros_100k": bytes(100000),
        "random_50k": rng.integers(0, 256, 50000, dtype=np.uint8).tobytes(),
        "text": text,
        "text_x20": text * 20,  # long matches, > 32 KiB window, several blocks
        "skewed_200k": rng.choice(np.arange(8, dtype=np.uint8), 200000, p=[.5, .2, .1, .1, .05, .03, .01, .01]).tobytes(),
        "ramp": bytes(range(256)) * 300,
    }
    if os.path.exists(fm):
        d["fashion_t10k_2MB"] = gzip.decompress(open(fm, "rb").read())[16:16 + 2000 * 784]
    return d


def main():
    build()
    bad = 0
    for name, data in inputs().items():
        line = []
        for lvl in range(10):
            z = run(["z", str(lvl)], data)
            if zlib.decompress(z) != data:
                print("FAIL zlib.decompress of our level %d on %s" % (lvl, name)); bad += 1
            g = run(["g", str(lvl)], data)
            if gzip.decompress(g) != data:
                print("FAIL gzip.decompress of our level %d on %s" % (lvl, name)); bad += 1
            if lvl in (1, 6, 9):
                line.append("L%d %d (py %d)" % (lvl, len(z), len(zlib.compress(data, lvl))))
            for strat in (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE, zlib.Z_FIXED):
                c = zlib.compressobj(lvl, zlib.DEFLATED, 15, 9, strat)
                pz = c.compress(data) + c.flush()
                if run(["d"], pz) != data:
                    print("FAIL our inflate on Python zlib level %d strategy %d, %s" % (lvl, strat, name)); bad += 1
            if run(["u"], gzip.compress(data, lvl) + gzip.compress(data[:100], lvl)) != data + data[:100]:
                print("FAIL our gunzip on 2-member Python gzip level %d, %s" % (lvl, name)); bad += 1
        print("%-18s %8d bytes: %s" % (name, len(data), ", ".join(line)))
    rng = np.random.default_rng(1)
    tmp = os.path.join(ROOT, "build", "check_deflate.png")
    for c in (1, 2, 3, 4):
        for (h, w) in ((1, 1), (7, 13), (64, 48)):
            yy, xx = np.mgrid[0:h, 0:w]
            a = np.stack([(xx * 5 + yy * 3 + 40 * k) % 256 for k in range(c)], -1).astype(np.uint8)
            a[::3] = rng.integers(0, 256, a[::3].shape, dtype=np.uint8)
            run(["p", str(w), str(h), str(c), tmp], a.tobytes())
            im = Image.open(tmp)
            im.load()
            got = np.asarray(im).reshape(h, w, c)
            if im.mode != {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c] or not np.array_equal(got, a):
                print("FAIL PIL reading our PNG c=%d %dx%d (mode %s)" % (c, w, h, im.mode)); bad += 1
    os.remove(tmp)
    print("PNG writer: PIL reads all 12 images" if not bad else "%d failures" % bad)
    print("OK" if bad == 0 else "FAILED (%d)" % bad)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
