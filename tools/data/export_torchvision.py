#!/usr/bin/python3
"""export_torchvision: a torchvision vgg16 or resnet18 state_dict -> safetensors for gad.

    # a model trained in PyTorch, saved with torch.save(model.state_dict(), "m.pth"),
    # evaluated with Resize(256), CenterCrop(224), ToTensor(), Normalize(ImageNet)
    export_torchvision.py --pth m.pth --out m.safetensors --resize 256 --crop 224 \\
        --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --classes cat,dog
    # a freshly initialised model (for tests)
    export_torchvision.py --arch resnet18 --num-classes 10 --seed 0 --out r18.safetensors

Metadata (__metadata__, every value a string); nn/model_io.c reads exactly these keys:
    "arch"        "vgg16" or "resnet18"; always written (the C loader checks it agrees
                  with the tensor names)
    "input_size"  "CxHxW", e.g. "3x224x224"       (--input-size; from --crop when absent)
    "resize"      "N" or "HxW": torchvision's Resize(N) / Resize((H, W)) on PIL images (--resize)
    "crop"        "N" or "HxW": CenterCrop after it                      (--crop)
    "mean"        three comma-separated floats, e.g. "0.485,0.456,0.406" (--mean)
    "std"         three comma-separated floats, e.g. "0.229,0.224,0.225" (--std)
    "normalize"   "none" with --no-normalize (gad warns when a model states neither)
gad preprocesses images exactly as these say (the same pixels as Pillow and
torchvision); without resize and crop it resizes them straight to input_size with its
own bilinear resize (what `gad train` does), which is not torchvision's pipeline.
mean/std are required: give the Normalize of the training transforms, or
--no-normalize for a model trained on pixels in 0..1 (asked for on a terminal).
    "classes"     a JSON array of strings, e.g. ["cat","dog"], one per model output, in
                  output order                      (--classes a,b,c or --classes-file)
mean and std are given together or not at all. Keys not given are not written.

Tensors: every state_dict entry under torchvision's names, in state_dict order; floats
as float32 (F32; half/double are converted), BatchNorm's num_batches_tracked as int64
(I64, shape []). A "module." prefix (DataParallel) is removed, and a checkpoint dict
holding the weights under "state_dict" / "model_state_dict" / "model" is unwrapped.
The weights are checked by loading them into the torchvision model (strict), and the
written file is read back and compared. Written with tools/stio.py, so the
`safetensors` package is not needed. Not for: other architectures, reduced-width gad
models (those are saved by gad itself)."""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needs  # noqa: E402
needs.modules("numpy", "torch", "torchvision")

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import stio  # noqa: E402

ARCHS = {"vgg16": torchvision.models.vgg16, "resnet18": torchvision.models.resnet18}
HEAD = {"vgg16": "classifier.6.weight", "resnet18": "fc.weight"}


def die(msg):
    sys.exit("export_torchvision: " + msg)


def load_pth(path):
    """A plain state_dict from a .pth file (tensors only: torch.load weights_only)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling problem is reported the same way
        die("%s: cannot load as a state_dict (%s); save it with torch.save(model.state_dict(), path)"
            % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))
    if isinstance(obj, dict):
        for k in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(k), dict):
                obj = obj[k]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        die("%s: not a state_dict (a dict of tensors)" % path)
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def guess_arch(sd):
    if "features.0.weight" in sd and HEAD["vgg16"] in sd:
        return "vgg16"
    if "conv1.weight" in sd and HEAD["resnet18"] in sd:
        return "resnet18"
    die("the state_dict is neither a torchvision vgg16 nor a resnet18 (first keys: %s)"
        % ", ".join(list(sd)[:4]))


def floats3(text, what, positive=False):
    try:
        v = [float(x) for x in text.split(",")]
    except ValueError:
        v = []
    if len(v) != 3 or not all(np.isfinite(v)) or (positive and min(v) <= 0):
        die("--%s: expected three %snumbers like 0.485,0.456,0.406, got %r"
            % (what, "positive " if positive else "", text))
    return ",".join(repr(x) for x in v)


def size_arg(text, what):
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        die("--%s: expected N or HxW like 256 or 256x320, got %r" % (what, text))
    return text


NORM_HELP = ("the Normalize(mean, std) of the model's training transforms, e.g. ImageNet's "
             "--mean 0.485,0.456,0.406 --std 0.229,0.224,0.225, or --no-normalize for a model "
             "trained on pixels in 0..1")


def ask_normalisation():
    """mean/std from the terminal; without one, an error saying what to give."""
    if not sys.stdin.isatty():
        die("give " + NORM_HELP + " (gad feeds images exactly as the metadata says)")
    print("export_torchvision: the model's input normalisation is needed: " + NORM_HELP, file=sys.stderr)
    mean = input("mean (three numbers, 'imagenet', or 'none' for no Normalize): ").strip()
    if mean == "none":
        return None, None
    if mean == "imagenet":
        return "0.485,0.456,0.406", "0.229,0.224,0.225"
    return mean, input("std (three numbers): ").strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pth", help="state_dict saved with torch.save(model.state_dict(), path)")
    ap.add_argument("--arch", choices=sorted(ARCHS), help="required without --pth; checked with it")
    ap.add_argument("--num-classes", type=int, help="outputs of a fresh model (without --pth)")
    ap.add_argument("--seed", type=int, default=0, help="torch.manual_seed for a fresh model")
    ap.add_argument("--out", "-o", required=True, help="output .safetensors")
    ap.add_argument("--input-size", help="CxHxW, e.g. 3x224x224")
    ap.add_argument("--resize", help="torchvision Resize of the evaluation transforms: N (shorter side) or HxW")
    ap.add_argument("--crop", help="torchvision CenterCrop of the evaluation transforms: N or HxW")
    ap.add_argument("--no-normalize", action="store_true",
                    help="the model was trained on pixels in 0..1 without Normalize")
    ap.add_argument("--mean", help="per-channel mean, e.g. 0.485,0.456,0.406")
    ap.add_argument("--std", help="per-channel std, e.g. 0.229,0.224,0.225")
    ap.add_argument("--classes", help="class names in output order, comma-separated")
    ap.add_argument("--classes-file", help="class names in output order, one per line")
    a = ap.parse_args()

    if a.pth:
        if a.num_classes is not None:
            die("--num-classes is for a fresh model; with --pth it comes from the weights")
        sd = load_pth(a.pth)
        arch = guess_arch(sd)
        if a.arch and a.arch != arch:
            die("%s holds a %s state_dict, not %s" % (a.pth, arch, a.arch))
        K = int(sd[HEAD[arch]].shape[0])
        model = ARCHS[arch](weights=None, num_classes=K)
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
        try:
            model.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            die("%s does not fit torchvision's %s: %s" % (a.pth, arch, str(e).replace("\n", " ")[:400]))
    else:
        if not a.arch or a.num_classes is None:
            die("give --pth FILE, or --arch and --num-classes for a fresh model")
        if a.num_classes < 1:
            die("--num-classes must be at least 1")
        arch, K = a.arch, a.num_classes
        torch.manual_seed(a.seed)
        model = ARCHS[arch](weights=None, num_classes=K)

    meta = {"arch": arch}
    if a.input_size is not None:
        m = re.fullmatch(r"(\d+)x(\d+)x(\d+)", a.input_size)
        if not m or int(m.group(1)) != 3 or min(int(m.group(2)), int(m.group(3))) < 32:
            die("--input-size: expected 3xHxW with H, W >= 32, like 3x224x224, got %r" % a.input_size)
        meta["input_size"] = a.input_size
    if a.resize is not None:
        meta["resize"] = size_arg(a.resize, "resize")
    if a.crop is not None:
        meta["crop"] = size_arg(a.crop, "crop")
        h, w = (meta["crop"].split("x") + [meta["crop"]])[:2]
        if min(int(h), int(w)) < 32:
            die("--crop: at least 32x32 (vgg16 and resnet18 need it), got %r" % a.crop)
        cs = "3x%sx%s" % (h, w)
        if "input_size" in meta and meta["input_size"] != cs:
            die("--input-size %s disagrees with --crop %s (the crop is the model's input)" % (a.input_size, a.crop))
        meta["input_size"] = cs
    if "resize" not in meta and "crop" not in meta:
        print("export_torchvision: note: no --resize/--crop: gad will resize images straight to the input size "
              "with its own bilinear resize; torchvision's usual evaluation is --resize 256 --crop 224",
              file=sys.stderr)
    if (a.mean is None) != (a.std is None):
        die("give --mean and --std together")
    if a.mean is not None and a.no_normalize:
        die("--no-normalize contradicts --mean/--std")
    if a.mean is None and not a.no_normalize:
        a.mean, a.std = ask_normalisation()
    if a.mean is not None:
        meta["mean"] = floats3(a.mean, "mean")
        meta["std"] = floats3(a.std, "std", positive=True)
    else:
        meta["normalize"] = "none"  # said on purpose: gad does not warn about it
    if a.classes is not None and a.classes_file is not None:
        die("give --classes or --classes-file, not both")
    names = None
    if a.classes is not None:
        names = [c.strip() for c in a.classes.split(",")]
    elif a.classes_file is not None:
        with open(a.classes_file, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    if names is not None:
        if any(not c for c in names):
            die("--classes: empty class name")
        if len(names) != K:
            die("%d class names given but the model has %d outputs" % (len(names), K))
        meta["classes"] = json.dumps(names, ensure_ascii=False, separators=(",", ":"))

    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if k.endswith("num_batches_tracked"):
            v = v.to(torch.int64)
        elif v.is_floating_point():
            v = v.to(torch.float32)
        else:
            die("tensor %s has dtype %s: only floats and num_batches_tracked are expected" % (k, v.dtype))
        tensors[k] = v
    stio.save(a.out, tensors, meta)

    # read back and compare
    back, bmeta = stio.load(a.out)
    if list(back) != list(tensors) or bmeta != meta:
        die("%s: read-back mismatch in names or metadata" % a.out)
    for k, v in tensors.items():
        w = back[k]
        if w.shape != tuple(v.shape) or not np.array_equal(w, v.numpy()):
            die("%s: read-back mismatch in %s" % (a.out, k))
    nparam = sum(int(v.numel()) for v in tensors.values())
    print("%s: %s, %d classes, %d tensors, %d values, metadata: %s"
          % (a.out, arch, K, len(tensors), nparam, ", ".join(sorted(meta))))


if __name__ == "__main__":
    main()
