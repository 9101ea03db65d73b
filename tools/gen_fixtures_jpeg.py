#!/usr/bin/python3
"""gen_fixtures_jpeg: JPEG fixtures for tests/test_jpeg.c, written to
tests/fixtures/jpeg/ with libjpeg-turbo's cjpeg/jpegtran and Pillow.

Run with the Python that has Pillow (Debian: /usr/bin/python3, python3-pil) and
with libjpeg-turbo-progs installed (cjpeg, jpegtran):
    /usr/bin/python3 tools/gen_fixtures_jpeg.py [--photos DIR]

  src/*.png         small cuts of public-domain / CC0 photographs (scikit-image's
                    sample data: astronaut = NASA, public domain; chelsea and coffee
                    = CC0) and camera.jpg, a lossless jpegtran crop of rocket.jpg
                    (SpaceX, public domain) that keeps the camera's own encoding.
                    Made once with --photos DIR (a folder holding those files,
                    e.g. skimage/data of Debian's python3-skimage); without it the
                    committed ones are reused.
  NAME.jpg          one file per mode: baseline and progressive, grayscale, YCbCr
                    4:4:4 4:2:2 4:2:0 4:4:0 4:1:1 and odd sampling factors, restart
                    markers, several sequential scans, optimised tables, RGB, tiny
                    and narrow sizes, qualities 5 and 100, an EXIF orientation tag
  NAME.png          Pillow's decode of NAME.jpg (Image.open(f) as it is: libjpeg-
                    turbo's islow IDCT and fancy upsampling), the expected pixels
  bad_*.jpg         files gad must refuse, with the reason it must give
  manifest.txt      one line per file: the name and the expected result, either
                    "pixels ORIENTATION MAXDIFF" (the EXIF orientation it carries,
                    and the largest difference allowed from Pillow's pixels: 0 but
                    for prog_incomplete) or "refuse: WORDS" (words the message
                    must contain)"""
import argparse
import io
import os
import shutil
import subprocess
import tempfile

import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy", "PIL")

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "jpeg")
SRC = os.path.join(OUT, "src")
manifest = []


def make_sources(photos):
    os.makedirs(SRC, exist_ok=True)
    im = Image.open(os.path.join(photos, "chelsea.png")).convert("RGB")
    im.crop((120, 20, 330, 170)).resize((53, 37), Image.LANCZOS).save(os.path.join(SRC, "chelsea.png"))
    im = Image.open(os.path.join(photos, "astronaut.png")).convert("RGB")
    im.crop((140, 20, 340, 220)).resize((48, 48), Image.LANCZOS).save(os.path.join(SRC, "astronaut.png"))
    im = Image.open(os.path.join(photos, "coffee.png")).convert("RGB")
    im.crop((100, 0, 500, 300)).resize((40, 30), Image.LANCZOS).save(os.path.join(SRC, "coffee.png"))
    with open(os.path.join(SRC, "camera.jpg"), "wb") as f:
        f.write(run(["jpegtran", "-crop", "72x56+280+120", "-copy", "none", os.path.join(photos, "rocket.jpg")]))


def run(cmd, stdin=None):
    return subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, check=True).stdout


def synthetic(w, h, seed):
    """Gradients, a disc, sharp edges and some noise: every frequency band."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127 + 120 * np.sin(x / max(w, 1) * 6.0) * np.cos(y / max(h, 1) * 3.0)
    g = 255 * x / max(w - 1, 1)
    b = np.where((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2, 230.0, 20.0)
    b[:, ::7] = 255 - b[:, ::7]
    a = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def ppm(im):
    buf = io.BytesIO()
    im.save(buf, "PPM")
    return buf.getvalue()


def cjpeg(im, *args):
    """cjpeg reading a PPM (or PGM) from stdin."""
    return run(["cjpeg", *args], stdin=ppm(im))


def put(name, data, orientation=0, tol=0):
    path = os.path.join(OUT, name + ".jpg")
    with open(path, "wb") as f:
        f.write(data)
    im = Image.open(path)
    im.load()
    assert im.mode in ("L", "RGB"), (name, im.mode)
    im.save(os.path.join(OUT, name + ".png"))
    manifest.append("%s pixels %d %d" % (name, orientation, tol))


def refuse(name, data, words):
    with open(os.path.join(OUT, name + ".jpg"), "wb") as f:
        f.write(data)
    manifest.append("%s refuse: %s" % (name, words))


def patch_sof(data, marker, precision=None):
    """Change the first SOFn marker byte (and optionally the sample precision)."""
    b = bytearray(data)
    for i in range(2, len(b) - 4):
        if b[i] == 0xFF and b[i + 1] in (0xC0, 0xC1, 0xC2):
            b[i + 1] = marker
            if precision is not None:
                b[i + 4] = precision
            return bytes(b)
    raise ValueError("no SOF")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", help="folder with astronaut.png, chelsea.png, coffee.png, rocket.jpg")
    a = ap.parse_args()
    if a.photos:
        make_sources(a.photos)
    for f in os.listdir(OUT) if os.path.isdir(OUT) else []:
        if f.endswith((".jpg", ".png")) or f == "manifest.txt":
            os.remove(os.path.join(OUT, f))
    os.makedirs(OUT, exist_ok=True)
    cat = Image.open(os.path.join(SRC, "chelsea.png")).convert("RGB")
    astro = Image.open(os.path.join(SRC, "astronaut.png")).convert("RGB")
    coffee = Image.open(os.path.join(SRC, "coffee.png")).convert("RGB")
    syn = synthetic(45, 29, 1)

    # photos: the usual modes, as cjpeg writes them (cjpeg -sample HxV sets luma's factors)
    for s, tag in [("1x1", "444"), ("2x1", "422"), ("2x2", "420"), ("1x2", "440"), ("4x1", "411")]:
        put("photo_" + tag, cjpeg(cat, "-quality", "90", "-sample", s))
        put("photo_" + tag + "_prog", cjpeg(astro, "-quality", "85", "-sample", s, "-progressive"))
    put("photo_gray", cjpeg(cat.convert("L"), "-quality", "90"))
    put("photo_gray_prog", cjpeg(astro.convert("L"), "-progressive"))
    with open(os.path.join(SRC, "camera.jpg"), "rb") as f:
        put("camera_crop", f.read())
    # Pillow as writer (its own tables and markers), with an EXIF orientation tag
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    coffee.save(buf, "JPEG", quality=80, subsampling=2, exif=exif.tobytes())
    put("pillow_420_exif6", buf.getvalue(), orientation=6)
    buf = io.BytesIO()
    coffee.save(buf, "JPEG", quality=95, subsampling=1, progressive=True)
    put("pillow_422_prog", buf.getvalue())

    # synthetic content: odd sizes and factors
    put("syn_420", cjpeg(syn, "-sample", "2x2"))
    put("syn_3x1", cjpeg(syn, "-sample", "3x1"))
    put("syn_4x2", cjpeg(syn, "-sample", "4x2"))
    put("syn_mixed", cjpeg(syn, "-sample", "2x2,1x2,2x1"))     # Cb 2:1 across, Cr 2:1 down
    put("syn_q100", cjpeg(syn, "-quality", "100", "-sample", "1x1"))
    put("syn_q5", cjpeg(syn, "-quality", "5"))
    put("syn_optimized", cjpeg(syn, "-optimize", "-sample", "2x1"))
    put("syn_rgb", cjpeg(syn, "-rgb"))
    put("syn_restart_rows", cjpeg(syn, "-restart", "1"))
    put("syn_restart_prog", cjpeg(syn, "-restart", "3B", "-progressive"))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("0: 0 0 0 0;\n1: 0 0 0 0;\n2: 0 0 0 0;\n0: 1 63 0 0;\n1: 1 63 0 0;\n2: 1 63 0 0;\n")
        scans = f.name
    put("syn_multiscan", cjpeg(syn, "-scans", scans))  # sequential, one component per scan
    os.remove(scans)
    for (w, h), s in [((1, 1), "2x2"), ((5, 3), "2x2"), ((2, 9), "2x1"), ((19, 2), "2x2"), ((9, 17), "1x2")]:
        put("tiny_%dx%d_%s" % (w, h, s), cjpeg(synthetic(w, h, w * h), "-sample", s))

    # a progressive file cut after a scan and closed with EOI: libjpeg smooths the
    # unfinished blocks, gad does not (the one documented difference)
    p = cjpeg(cat, "-sample", "2x2", "-progressive")
    put("prog_incomplete", p[:p.rfind(b"\xff\xda")] + b"\xff\xd9", tol=4)

    # refused, each with the words its message must hold
    base = cjpeg(syn, "-sample", "2x2")
    refuse("bad_arithmetic", cjpeg(syn, "-arithmetic"), "arithmetic")
    refuse("bad_12bit", patch_sof(base, 0xC0, precision=12), "12-bit")
    refuse("bad_lossless", patch_sof(base, 0xC3), "lossless")
    refuse("bad_hierarchical", patch_sof(base, 0xC5), "hierarchical")
    buf = io.BytesIO()
    syn.convert("CMYK").save(buf, "JPEG")
    refuse("bad_cmyk", buf.getvalue(), "CMYK")
    refuse("bad_truncated", base[:len(base) * 2 // 3], "truncated")
    refuse("bad_no_eoi", base[:-2], "EOI")
    rst = cjpeg(syn, "-restart", "1B")
    i = rst.find(b"\xff\xd1")
    refuse("bad_restart", rst[:i + 1] + b"\xd3" + rst[i + 2:], "RST1")
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    sizes = [os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT) if n.endswith(".jpg")]
    print("%d files, %d JPEG bytes (largest %d)" % (len(manifest), sum(sizes), max(sizes)))


if __name__ == "__main__":
    if not shutil.which("cjpeg") or not shutil.which("jpegtran"):
        raise SystemExit("needs cjpeg and jpegtran (Debian: apt-get install libjpeg-turbo-progs)")
    main()
