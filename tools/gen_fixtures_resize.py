#!/usr/bin/python3
"""gen_fixtures_resize: torchvision preprocessing fixtures for tests/test_resize.c,
written to tests/fixtures/resize/ with Pillow and torchvision.

Run with the Python that has torch, torchvision and Pillow (Debian:
/usr/bin/python3 with python3-torchvision and python3-pil):
    /usr/bin/python3 tools/gen_fixtures_resize.py

  gray.png, rgba.png, tall.png   small synthetic sources (the photos come from
                                 tests/fixtures/jpeg)
  cases.txt        one pipeline per line: NAME SOURCE RESIZE CROP NORM, where RESIZE
                   and CROP are "-" (none), "N" (Resize(N) / CenterCrop(N)) or
                   "HxW", and NORM is "imagenet" or "-"
  expect.safetensors
      tv_NAME [3,H,W]  transforms.Compose([Resize, CenterCrop, ToTensor(),
                       Normalize]) on Image.open(SOURCE).convert('RGB'), the way
                       torchvision's ImageFolder loads an image
      rs_NAME [h,w,c]  Pillow's Image.resize((w, h), BILINEAR) of SOURCE (c = 1 for
                       gray; RGBA converted to RGB first), as float32 bytes"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy", "torch", "torchvision", "PIL")

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "resize")
JPEG = os.path.join(ROOT, "tests", "fixtures", "jpeg")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

# NAME, SOURCE (relative to tests/fixtures), RESIZE, CROP, NORM
CASES = [
    ("down_crop", "jpeg/photo_420.jpg", "32", "24", "imagenet"),      # shrink (antialiased), crop
    ("up_crop", "jpeg/src/astronaut.png", "64", "56", "imagenet"),    # enlarge, crop
    ("same_oddcrop", "jpeg/src/chelsea.png", "37", "32", "-"),        # resize to its own size; offsets 10.5, 2.5
    ("crop_pads", "jpeg/src/coffee.png", "-", "36", "-"),             # crop taller than the image: zero rows
    ("exact_hw", "resize/gray.png", "20x30", "-", "imagenet"),        # Resize((20, 30)) of a gray image
    ("rgba", "resize/rgba.png", "16", "16", "-"),                     # alpha dropped first
    ("tall_rect", "resize/tall.png", "24", "24x20", "imagenet"),      # portrait, rectangular crop
    ("short_trunc", "jpeg/photo_420.jpg", "20", "20", "-"),           # long side int(20 * 53 / 37) = 28
    ("camera_usual", "jpeg/camera_crop.jpg", "80", "64", "imagenet"), # the usual pipeline shape, enlarged
    ("prog_half", "jpeg/photo_444_prog.jpg", "24", "17", "-"),        # odd crop of an even size
]
# SOURCE, (w, h) for plain Image.resize checks
RESIZES = [
    ("jpeg/photo_420.jpg", (96, 96)), ("jpeg/photo_420.jpg", (17, 11)), ("jpeg/src/chelsea.png", (53, 9)),
    ("jpeg/src/astronaut.png", (5, 97)), ("resize/gray.png", (100, 7)), ("resize/rgba.png", (1, 1)),
    ("jpeg/camera_crop.jpg", (71, 57)),
]


def size(text):
    if text == "-":
        return None
    if "x" in text:
        h, w = text.split("x")
        return (int(h), int(w))
    return int(text)


def sources():
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:23, 0:41]
    g = (128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0) + rng.normal(0, 10, x.shape)).clip(0, 255)
    Image.fromarray(g.astype(np.uint8), "L").save(os.path.join(OUT, "gray.png"))
    a = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    a[:, :, :3] = np.repeat(np.linspace(0, 255, 30, dtype=np.uint8)[None, :, None], 3, 2) // 2 + a[:, :, :3] // 2
    Image.fromarray(a, "RGBA").save(os.path.join(OUT, "rgba.png"))
    y, x = np.mgrid[0:50, 0:21]
    t = np.stack([x * 12, y * 5, (x + y) * 3 % 256], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(t, "RGB").save(os.path.join(OUT, "tall.png"))


def main():
    os.makedirs(OUT, exist_ok=True)
    sources()
    fx = os.path.dirname(OUT)
    expect, lines = {}, []
    for name, src, rs, cr, norm in CASES:
        steps = []
        if size(rs) is not None:
            steps.append(transforms.Resize(size(rs)))  # PIL image: Pillow's BILINEAR
        if size(cr) is not None:
            steps.append(transforms.CenterCrop(size(cr)))
        steps.append(transforms.ToTensor())
        if norm == "imagenet":
            steps.append(transforms.Normalize(MEAN, STD))
        with open(os.path.join(fx, src), "rb") as f:
            img = Image.open(f).convert("RGB")
        expect["tv_" + name] = transforms.Compose(steps)(img).to(torch.float32)
        lines.append("%s %s %s %s %s" % (name, src, rs, cr, norm))
    for i, (src, (w, h)) in enumerate(RESIZES):
        im = Image.open(os.path.join(fx, src))
        if im.mode not in ("L", "RGB"):  # as torchvision: convert('RGB') first (alpha dropped)
            im = im.convert("RGB")
        a = np.asarray(im.resize((w, h), Image.BILINEAR)).astype(np.float32)
        expect["rs_%d" % i] = a.reshape(h, w, -1)
        lines.append("resize%d %s %dx%d" % (i, src, h, w))
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    stio.save(os.path.join(OUT, "expect.safetensors"), expect,
              metadata={"torchvision": __import__("torchvision").__version__,
                        "pillow": Image.__version__})
    print("%d pipelines, %d resizes -> %s" % (len(CASES), len(RESIZES), OUT))


if __name__ == "__main__":
    main()
