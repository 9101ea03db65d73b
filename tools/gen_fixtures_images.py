#!/usr/bin/python3
"""gen_fixtures_images: fixtures for tests/test_io_images.c, written to
tests/fixtures/images/ with the real zlib / gzip / PIL / torch:
  png/*.png       every colour type and bit depth, all five filters (row y uses
                  filter y % 5), Adam7, split IDATs, ancillary chunks; written by a
                  small PNG writer here over Python's zlib, plus a few written by PIL
  pnm/*.p?m       P2/P3/P5/P6, comments, maxval 255 / 100 / 7 (read back with PIL)
  z/blob.*        one blob compressed by Python's zlib (levels, strategies), by
                  /usr/bin/gzip, by hand with FEXTRA/FNAME/FCOMMENT/FHCRC, two members
  idx/            small IDX image/label files, gzip'd and plain, with a classes file
  folder/         a torchvision ImageFolder tree
  expect.safetensors   expected arrays:
      png_<name> [h,w,c]   decoded samples (16-bit: high byte; low-bit gray scaled)
      in_<name>  [3,h,w]   ToTensor(Image.open(f).convert('RGB')) where PIL agrees
      pnm_<name> [h,w,c]   PIL's decoding
      rs<k>_in / rs<k>_out F.interpolate(bilinear, align_corners=False) pairs
      pipe_<name> [3,H,W]  ((interpolate(ToTensor(convert RGB)) - mean) / std)
      idx_x, idx_y, idx_held  dataset of idx/tiny with classes "cat,ant", 6x5
      fold_x, fold_y       torchvision ImageFolder over folder/, resized to 8x8
    /usr/bin/python3 tools/gen_fixtures_images.py"""
import gzip
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy", "torch", "PIL")

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "images")
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
rng = np.random.default_rng(1234)
expect = {}

# ---- a PNG writer that can do what PIL cannot (interlace, every filter, 16-bit RGB)


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)


def pack_row(samples, depth):
    """samples: 1-D ints of one row -> bytes"""
    if depth == 16:
        return np.asarray(samples, ">u2").tobytes()
    if depth == 8:
        return np.asarray(samples, np.uint8).tobytes()
    per = 8 // depth
    out = bytearray((len(samples) + per - 1) // per)
    for i, v in enumerate(samples):
        out[i // per] |= int(v) << (8 - depth - (i % per) * depth)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def filt(row, prev, bpp, ft):
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i] if prev is not None else 0
        c = prev[i - bpp] if (prev is not None and i >= bpp) else 0
        pred = [0, a, b, (a + b) >> 1, paeth(a, b, c)][ft]
        out[i] = (row[i] - pred) & 255
    return bytes([ft]) + bytes(out)


def png_encode(a, depth, ctype, interlace=False, palette=None, trns=None, idat_pieces=1, level=6, extra=()):
    """a: [h,w,spp] integer samples (palette indices for ctype 3)"""
    h, w, spp = a.shape
    bpp = max(1, depth * spp // 8)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for (x0, y0, dx, dy) in (passes if interlace else [(0, 0, 1, 1)]):
        sub = a[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        prev = None
        for y in range(sub.shape[0]):
            row = pack_row(sub[y].reshape(-1), depth)
            raw += filt(row, prev, bpp, y % 5)
            prev = row
    z = zlib.compress(raw, level)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    out += chunk(b"tEXt", b"Comment\x00gad fixture")
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    for t, d in extra:
        out += chunk(t, d)
    k = (len(z) + idat_pieces - 1) // idat_pieces
    for i in range(0, len(z), k):
        out += chunk(b"IDAT", z[i:i + k])
    return out + chunk(b"IEND", b"")


def to8(a, depth):
    """expected 8-bit samples: 16-bit keeps the high byte, low-bit gray is scaled"""
    if depth == 16:
        return (a >> 8).astype(np.float32)
    if depth < 8:
        return (a * 255 // ((1 << depth) - 1)).astype(np.float32)
    return a.astype(np.float32)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def pil_input(path):
    im = Image.open(path).convert("RGB")
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).contiguous().float().div(255)  # as ToTensor


def gen_png():
    cases = []
    for (h, w) in [(11, 13)]:
        for depth in (1, 2, 4, 8, 16):
            cases.append(("g%d" % depth, depth, 0, h, w, False))
        cases += [("ga8", 8, 4, h, w, False), ("ga16", 16, 4, h, w, False), ("rgb8", 8, 2, h, w, False),
                  ("rgb16", 16, 2, h, w, False), ("rgba8", 8, 6, h, w, False), ("rgba16", 16, 6, h, w, False)]
        for depth in (1, 2, 4, 8):
            cases.append(("p%d" % depth, depth, 3, h, w, False))
    cases += [("g8_i", 8, 0, 11, 13, True), ("g1_i", 1, 0, 7, 10, True), ("rgb8_i", 8, 2, 9, 17, True),
              ("rgb16_i", 16, 2, 6, 5, True), ("rgba8_i", 8, 6, 8, 8, True), ("p2_i", 2, 3, 5, 11, True),
              ("ga8_i", 8, 4, 4, 3, True), ("rgb8_i1x1", 8, 2, 1, 1, True), ("g8_i3x2", 8, 0, 2, 3, True),
              ("rgb8_big", 8, 2, 40, 56, False)]
    spp_of = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
    for name, depth, ctype, h, w, il in cases:
        spp = spp_of[ctype]
        hi = (1 << depth) - 1
        pal = None
        if ctype == 3:
            ncol = min(1 << depth, 200)
            pal = rng.integers(0, 256, (ncol, 3))
            a = rng.integers(0, ncol, (h, w, 1))
            exp = pal[a[..., 0]].astype(np.float32)
        else:
            yy, xx = np.mgrid[0:h, 0:w]
            smooth = np.stack([(xx * (hi // max(w, 1)) + yy * 3 * (k + 1)) % (hi + 1) for k in range(spp)], -1)
            a = np.where(rng.random((h, w, spp)) < 0.3, rng.integers(0, hi + 1, (h, w, spp)), smooth)
            exp = to8(a, depth)
        trns = b"\x00\x01\x02" if ctype == 3 else None
        data = png_encode(a, depth, ctype, il, pal, trns, idat_pieces=3 if name == "rgb8" else 1,
                          level=9 if "big" in name else 6)
        path = os.path.join(OUT, "png", name + ".png")
        write(path, data)
        expect["png_" + name] = exp
        # PIL must agree with the expected samples where its convert('RGB') is defined the same way
        rgb = exp if exp.shape[2] >= 3 else np.repeat(exp[..., :1], 3, -1)
        got = pil_input(path)
        want = torch.from_numpy(rgb[..., :3].copy()).permute(2, 0, 1).float().div(255)
        if torch.equal(got, want):
            expect["in_" + name] = got
        else:
            print("  note: PIL's convert('RGB') of %s differs from the high-byte rule; no in_%s" % (name, name))
    # written by PIL itself (its own zlib use, its own filter choice)
    yy, xx = np.mgrid[0:19, 0:23]
    base = np.stack([xx * 11 % 256, yy * 13 % 256, (xx * yy) % 256], -1).astype(np.uint8)
    pil_cases = {"pil_L": Image.fromarray(base[..., 0]), "pil_LA": Image.fromarray(base[..., :2], "LA"),
                 "pil_RGB": Image.fromarray(base), "pil_RGBA": Image.fromarray(np.dstack([base, base[..., :1]])),
                 "pil_P": Image.fromarray(base).quantize(7), "pil_1": Image.fromarray(base[..., 0] > 100)}
    for name, im in pil_cases.items():
        path = os.path.join(OUT, "png", name + ".png")
        im.save(path, optimize=(name == "pil_RGB"))
        native = np.asarray(Image.open(path).convert({"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "P": "RGB", "1": "L"}[im.mode]))
        expect["png_" + name] = native.reshape(native.shape[0], native.shape[1], -1).astype(np.float32)
        expect["in_" + name] = pil_input(path)


def gen_pnm():
    yy, xx = np.mgrid[0:6, 0:9]
    g = ((xx * 29 + yy * 7) % 256).astype(np.uint8)
    rgb = np.stack([g, 255 - g, (g * 3) % 256], -1).astype(np.uint8)
    files = {
        "p5.pgm": b"P5\n# a comment\n9 6\n255\n" + g.tobytes(),
        "p6.ppm": b"P6 9 6 255\n" + rgb.tobytes(),
        "p2.pgm": b"P2\n# ascii gray\n9 6\n# maxval next\n255\n" + " ".join(map(str, g.reshape(-1))).encode() + b"\n",
        "p3.ppm": b"P3\n9 6\n255\n" + "\n".join(" ".join(map(str, r)) for r in rgb.reshape(6, -1)).encode() + b"\n",
        "p5_m100.pgm": b"P5\n9 6\n100\n" + (g % 101).astype(np.uint8).tobytes(),
        "p6_m7.ppm": b"P6\n9 6\n7\n" + (rgb % 8).astype(np.uint8).tobytes(),
        "p2_m7.pgm": b"P2 9 6 7\n" + " ".join(map(str, (g % 8).reshape(-1))).encode(),
    }
    for name, data in files.items():
        path = os.path.join(OUT, "pnm", name)
        write(path, data)
        a = np.asarray(Image.open(path))
        expect["pnm_" + name.split(".")[0]] = a.reshape(6, 9, -1).astype(np.float32)


def gen_zlib():
    text = open(os.path.join(ROOT, "src", "io", "inflate.c"), "rb").read()[:6000]
    blob = text + rng.integers(0, 256, 2000, dtype=np.uint8).tobytes() + bytes(1500) + text[:3000] * 2
    zdir = os.path.join(OUT, "z")
    write(os.path.join(zdir, "blob.bin"), blob)
    for lvl in (0, 1, 9):
        write(os.path.join(zdir, "blob.zlib%d" % lvl), zlib.compress(blob, lvl))
    for sname, s in (("fixed", zlib.Z_FIXED), ("huff", zlib.Z_HUFFMAN_ONLY), ("rle", zlib.Z_RLE)):
        c = zlib.compressobj(6, zlib.DEFLATED, 15, 9, s)
        write(os.path.join(zdir, "blob.zlib_" + sname), c.compress(blob) + c.flush())
    # the real gzip: it stores the name (FNAME); fixed mtime for a deterministic file
    tmp = os.path.join(zdir, "blob.bin.tmpcopy")
    shutil.copyfile(os.path.join(zdir, "blob.bin"), tmp)
    os.utime(tmp, (1000000000, 1000000000))
    gz = subprocess.check_output(["gzip", "-9", "-c", tmp])
    os.remove(tmp)
    assert gz[3] & 8, "gzip should have stored FNAME"
    write(os.path.join(zdir, "blob.gz"), gz)
    # every optional header field, with a header CRC
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = c.compress(blob) + c.flush()
    hdr = b"\x1f\x8b\x08" + bytes([4 | 8 | 16 | 2]) + b"\x00\x00\x00\x00\x00\x03"
    hdr += struct.pack("<H", 6) + b"ab\x02\x00xy" + b"blob.bin\x00" + b"a comment\x00"
    hdr += struct.pack("<H", zlib.crc32(hdr) & 0xffff)
    write(os.path.join(zdir, "blob_hdr.gz"), hdr + raw + struct.pack("<II", zlib.crc32(blob) & 0xffffffff, len(blob)))
    half = len(blob) // 2
    write(os.path.join(zdir, "blob_multi.gz"), gzip.compress(blob[:half], 6, mtime=0) + gzip.compress(blob[half:], 1, mtime=0))


def idx_bytes(a):
    return struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.astype(np.uint8).tobytes()


def to_input(x_u8, size, mean, std):
    """[n,h,w] or [n,h,w,3] uint8 -> torch pipeline [n,3,H,W]"""
    t = torch.from_numpy(np.asarray(x_u8, np.float32)).div(255)
    t = t[:, None].repeat(1, 3, 1, 1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    if size and tuple(t.shape[2:]) != tuple(size):
        t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
    return (t - torch.tensor(mean)[None, :, None, None]) / torch.tensor(std)[None, :, None, None]


def gen_idx():
    d = os.path.join(OUT, "idx")
    x = rng.integers(0, 256, (17, 4, 5))
    y = np.array([2, 0, 1, 2, 2, 0, 0, 1, 2, 0, 2, 2, 0, 1, 0, 2, 0])
    write(os.path.join(d, "tiny-images-idx3-ubyte.gz"), gzip.compress(idx_bytes(x), 9, mtime=0))
    write(os.path.join(d, "tiny-labels-idx1-ubyte.gz"), gzip.compress(idx_bytes(y), 9, mtime=0))
    write(os.path.join(d, "tiny-classes.txt"), b"ant\nbee\ncat\n")
    write(os.path.join(d, "raw-images-idx3-ubyte"), idx_bytes(x))
    write(os.path.join(d, "raw-labels-idx1-ubyte"), idx_bytes(y))
    # the dataset of tiny with classes "cat,ant" (labels 0 = cat, 1 = ant), 6x5, val_frac 0.3
    order = ["cat", "ant"]
    names = ["ant", "bee", "cat"]
    keep = [i for i in range(len(y)) if names[y[i]] in order]
    lab = np.array([order.index(names[y[i]]) for i in keep])
    held = np.zeros(len(keep), np.int64)
    for c in range(2):
        pos = np.flatnonzero(lab == c)
        k = int(np.floor(len(pos) * np.float64(np.float32(0.3)) + 0.5))
        held[pos[len(pos) - k:]] = 1
    expect["idx_x"] = to_input(x[keep], (6, 5), MEAN, STD)
    expect["idx_y"] = lab.astype(np.int64)
    expect["idx_held"] = held
    expect["idx_raw"] = x.astype(np.float32)


def gen_folder():
    from torchvision import datasets, transforms
    d = os.path.join(OUT, "folder")
    shutil.rmtree(d, ignore_errors=True)
    sizes = {"cat": [(10, 12), (8, 8)], "Dog": [(5, 7), (12, 9), (8, 8)], "bird": [(3, 4)]}
    for cls, ss in sizes.items():
        for i, (h, w) in enumerate(ss):
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            mode = ["RGB", "L", "RGBA", "P"][i % 4]
            im = Image.fromarray(a)
            im = {"RGB": im, "L": im.convert("L"), "RGBA": im.convert("RGBA"), "P": im.quantize(16)}[mode]
            ext = ".ppm" if (cls == "Dog" and i == 1) else ".png"
            if ext == ".ppm":
                im = im.convert("RGB")
            os.makedirs(os.path.join(d, cls), exist_ok=True)
            im.save(os.path.join(d, cls, "img%d%s" % (i, ext)))
    write(os.path.join(d, "cat", "README.txt"), b"not an image\n")
    tf = transforms.Compose([transforms.Lambda(lambda im: im.convert("RGB")), transforms.ToTensor(),
                             transforms.Lambda(lambda t: F.interpolate(t[None], size=(8, 8), mode="bilinear",
                                                                       align_corners=False)[0]),
                             transforms.Normalize(MEAN, STD)])
    ds = datasets.ImageFolder(d, transform=tf)
    assert ds.classes == ["Dog", "bird", "cat"], ds.classes
    xs, ys = zip(*[ds[i] for i in range(len(ds))])
    expect["fold_x"] = torch.stack(xs)
    expect["fold_y"] = np.array(ys, np.int64)


def gen_resize():
    pairs = [((7, 9), (14, 18)), ((7, 9), (4, 5)), ((7, 9), (7, 13)), ((7, 9), (1, 1)), ((28, 28), (32, 32)),
             ((5, 3), (11, 7)), ((1, 1), (3, 2)), ((20, 20), (48, 48)), ((30, 17), (13, 29))]
    for k, (src, dst) in enumerate(pairs):
        x = torch.from_numpy(rng.random((3,) + src, dtype=np.float32))
        expect["rs%d_in" % k] = x
        expect["rs%d_out" % k] = F.interpolate(x[None], size=dst, mode="bilinear", align_corners=False)[0]
    for name, size in (("rgb8", (16, 20)), ("g8", (7, 9)), ("p4", (11, 13)), ("pil_RGBA", (32, 24))):
        t = pil_input(os.path.join(OUT, "png", name + ".png"))[None]
        if tuple(t.shape[2:]) != size:
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        expect["pipe_" + name] = ((t - torch.tensor(MEAN)[None, :, None, None]) / torch.tensor(STD)[None, :, None, None])[0]


def main():
    warnings.simplefilter("ignore", UserWarning)  # PIL: palette + tRNS bytes
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    gen_png()
    gen_pnm()
    gen_zlib()
    gen_idx()
    gen_folder()
    gen_resize()
    stio.save(os.path.join(OUT, "expect.safetensors"), expect, {"mean": ",".join(map(str, MEAN)), "std": ",".join(map(str, STD))})
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print("wrote %s: %d tensors, %d bytes in all" % (OUT, len(expect), total))


if __name__ == "__main__":
    main()
