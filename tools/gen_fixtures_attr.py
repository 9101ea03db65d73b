#!/usr/bin/python3
"""gen_fixtures_attr: reference attributions for tests/test_attr.c, computed with
Captum's rules re-implemented in plain PyTorch (Captum is not packaged in Debian).

    /usr/bin/python3 tools/gen_fixtures_attr.py      # writes tests/fixtures/attr/

What is written (safetensors via tools/stio.py):
  vgg16_w.safetensors, resnet18_w.safetensors   width-reduced torchvision models
      (vgg16: channels /16, classifier hidden 64; resnet18: channels /8; 10 classes)
      with non-identity batch-norm statistics, torchvision state_dict names.
  vgg16_attr.safetensors, resnet18_attr.safetensors
      x [2,3,32,32], targets (I64) [2], black [3,32,32] (an ImageNet "black" baseline),
      saliency, deconv, gxi, guided [2,3,32,32], and for IG
      ig_<variant>_<steps>[_black] [2,3,32,32] with ig_..._delta [2] (float64 stored
      as I64 bit patterns, see below), logits [2,10].
  leggauss.safetensors   numpy's leggauss(n) nodes/weights as float64 bit patterns
      in I64 tensors x<n>, w<n> (stio only has F32/I64, and the check is 1e-13).
  heatmap.safetensors    random signed maps and Captum's _normalize_attr of them.

Captum's rules, as implemented here:
  Saliency(abs=True)     |d y_t / d x|
  InputXGradient         x * d y_t / d x
  Deconvolution          a backward hook on every nn.ReLU returns relu(grad_output)
  GuidedBackprop         a backward hook on every nn.ReLU returns relu(grad_input)
                         (= relu(grad_output) * 1[x > 0])
  IntegratedGradients    cat([b + a*(x-b) for a in alphas]), grads * step sizes,
                         summed over steps, times (x-b); delta = sum(attr) - (F(x)-F(b)).
torchvision's ReLUs are in place; the models here use ReLU(inplace=False), so that
the module hooks see the real tensors. ResNet's `relu` module is called twice per
block: the hooks fire at every call. Every hook result is cross-checked against a
second implementation (a custom autograd ReLU).
Not for: SmoothGrad (its noise comes from gad's own generator; tested in C)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy", "torch", "torchvision")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "attr")
NCLASS = 10


def as_bits(a):
    """float64 array -> int64 array with the same bits (stio has no F64)."""
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.int64)


# ---------------------------------------------------------------- models
class VGG(nn.Module):
    """torchvision's VGG (features, avgpool, classifier) with any widths."""

    def __init__(self, div=16, hidden=64, classes=NCLASS):
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                o = max(1, round(v / div))
                layers += [nn.Conv2d(c, o, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c = o
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c * 49, hidden), nn.ReLU(inplace=False), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=False), nn.Dropout(),
            nn.Linear(hidden, classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class ResNet18(nn.Module):
    """torchvision's ResNet18 (BasicBlock, [2,2,2,2]) with channels 64/div..512/div."""

    def __init__(self, div=8, classes=NCLASS):
        super().__init__()
        w = [max(1, round(v / div)) for v in (64, 128, 256, 512)]
        self.inplanes = w[0]
        self.conv1 = nn.Conv2d(3, w[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.relu = nn.ReLU(inplace=False)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(w[0], 1)
        self.layer2 = self._make_layer(w[1], 2)
        self.layer3 = self._make_layer(w[2], 2)
        self.layer4 = self._make_layer(w[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(w[3], classes)

    def _make_layer(self, planes, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                 nn.BatchNorm2d(planes))
        blocks = [BasicBlock(self.inplanes, planes, stride, down), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomise(model, g):
    """Random weights, non-identity BN statistics, no in-place ReLU."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.ReLU):
                mod.inplace = False
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
            elif isinstance(mod, nn.Linear):
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) * (2.0 / mod.in_features) ** 0.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
            elif isinstance(mod, nn.BatchNorm2d):
                c = mod.num_features
                mod.weight.copy_(torch.rand(c, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(c, generator=g) * 0.1)
                mod.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
                mod.num_batches_tracked.fill_(7)
    return model.eval()


# ---------------------------------------------------------------- Captum's rules
def grads(model, x, targets, rule="standard"):
    """d y_t / d x with the ReLU backward rule of Captum's hooks."""
    hooks = []

    def hook(mod, grad_input, grad_output):
        if rule == "deconv":   # Deconvolution: use_relu_grad_output=True
            return tuple(F.relu(g) for g in grad_output)
        return tuple(F.relu(g) for g in grad_input)  # GuidedBackprop

    if rule != "standard":
        for mod in model.modules():
            if isinstance(mod, nn.ReLU):
                hooks.append(mod.register_full_backward_hook(hook))
    try:
        x = x.detach().clone().requires_grad_(True)
        out = model(x)
        sel = out[torch.arange(x.shape[0]), targets]
        (g,) = torch.autograd.grad(torch.unbind(sel), x)
    finally:
        for h in hooks:
            h.remove()
    return g.detach()


class _RuleReLU(torch.autograd.Function):
    """Second implementation of the rules for the cross-check."""

    @staticmethod
    def forward(ctx, x, rule):
        ctx.save_for_backward(x)
        ctx.rule = rule
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, gy):
        (x,) = ctx.saved_tensors
        if ctx.rule == "deconv":
            return gy.clamp(min=0), None
        return gy.clamp(min=0) * (x > 0).to(gy.dtype), None


def grads_check(model, x, targets, rule):
    orig = nn.ReLU.forward
    nn.ReLU.forward = lambda self, inp: _RuleReLU.apply(inp, rule)
    try:
        x = x.detach().clone().requires_grad_(True)
        out = model(x)
        (g,) = torch.autograd.grad(out[torch.arange(x.shape[0]), targets].sum(), x)
    finally:
        nn.ReLU.forward = orig
    return g


def captum_alphas(method, n):
    """Captum's approximation_parameters(method): (step_sizes, alphas)."""
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return list(0.5 * w), list(0.5 * (1 + x))
    assert n > 1
    deltas = [1 / n] * n
    if method == "riemann_trapezoid":
        deltas[0] /= 2
        deltas[-1] /= 2
        return deltas, list(np.linspace(0, 1, n))
    if method == "riemann_left":
        return deltas, list(np.linspace(0, 1 - 1 / n, n))
    if method == "riemann_middle":
        return deltas, list(np.linspace(1 / (2 * n), 1 - 1 / (2 * n), n))
    if method == "riemann_right":
        return deltas, list(np.linspace(1 / n, 1, n))
    raise ValueError(method)


def integrated_gradients(model, x, b, targets, method, steps):
    """Captum's IntegratedGradients._attribute and its convergence delta."""
    n = x.shape[0]
    sizes, alphas = captum_alphas(method, steps)
    scaled = torch.cat([b + a * (x - b) for a in alphas], dim=0)
    g = grads(model, scaled, targets.repeat(steps))
    g = g.contiguous().view(steps, -1) * torch.tensor(sizes, dtype=torch.float32).view(steps, 1)
    total = g.view((steps, n) + tuple(x.shape[1:])).sum(0)
    attr = total * (x - b)
    with torch.no_grad():
        fx = model(x)[torch.arange(n), targets].double()
        fb = model(b.expand_as(x).contiguous())[torch.arange(n), targets].double()
    delta = attr.double().view(n, -1).sum(1) - (fx - fb)
    return attr, delta


# ---------------------------------------------------------------- Captum's visualisation
def captum_normalize(attr_hwc, sign, outlier_perc=2):
    """captum.attr.visualization._normalize_attr with reduction_axis=2."""
    comb = np.sum(attr_hwc, axis=2)

    def cst(values, perc):
        s = np.sort(values.flatten())
        cs = np.cumsum(s)
        return s[np.where(cs >= cs[-1] * 0.01 * perc)[0][0]]

    if sign == "all":
        thr = cst(np.abs(comb), 100 - outlier_perc)
    else:  # absolute_value
        comb = np.abs(comb)
        thr = cst(comb, 100 - outlier_perc)
    return np.clip(comb / thr, -1, 1), thr


def model_fixture(name, model, g):
    x = torch.randn((2, 3, 32, 32), generator=g)
    with torch.no_grad():
        logits = model(x)
    # one target is the top class, the other an arbitrary one
    targets = torch.tensor([int(logits[0].argmax()), 7 if int(logits[1].argmax()) != 7 else 2])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    black = ((0 - mean) / std).expand(3, 32, 32).contiguous()
    out = {"x": x, "targets": targets.long(), "black": black, "logits": logits}
    gs = grads(model, x, targets)
    out["saliency"] = gs.abs()
    out["gxi"] = x * gs
    for rule in ("deconv", "guided"):
        a = grads(model, x, targets, rule)
        b = grads_check(model, x, targets, rule)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), rule
        assert not torch.allclose(a, gs), rule  # the rule changes something
        out[rule] = a
    runs = [("gausslegendre", 50, False), ("gausslegendre", 50, True), ("gausslegendre", 7, False),
            ("riemann_left", 20, False), ("riemann_right", 20, False),
            ("riemann_middle", 20, False), ("riemann_trapezoid", 20, True)]
    for method, steps, use_black in runs:
        b = black.unsqueeze(0) if use_black else torch.zeros(1, 3, 32, 32)
        attr, delta = integrated_gradients(model, x, b, targets, method, steps)
        key = "ig_%s_%d%s" % (method, steps, "_black" if use_black else "")
        out[key] = attr
        out[key + "_delta"] = as_bits(delta.numpy())
        print("  %-36s delta %s" % (key, np.array2string(delta.numpy(), precision=3)))
    for k in ("saliency", "deconv", "gxi", "guided"):
        print("  %-36s max|a| %.3g" % (k, float(out[k].abs().max())))
    stio.save(os.path.join(OUT, name + "_attr.safetensors"), out, {"made_by": "tools/gen_fixtures_attr.py"})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1234)
    for name, model in (("vgg16", VGG()), ("resnet18", ResNet18())):
        randomise(model, g)
        sd = model.state_dict()
        stio.save(os.path.join(OUT, name + "_w.safetensors"), {k: v for k, v in sd.items()},
                  {"made_by": "tools/gen_fixtures_attr.py"})
        print(name, sum(v.numel() for v in sd.values()), "numbers")
        model_fixture(name, model, g)

    lg = {}
    for n in (1, 2, 3, 4, 5, 8, 13, 50, 64, 100, 200):
        x, w = np.polynomial.legendre.leggauss(n)
        lg["x%d" % n], lg["w%d" % n] = as_bits(x), as_bits(w)
    stio.save(os.path.join(OUT, "leggauss.safetensors"), lg, {"made_by": "tools/gen_fixtures_attr.py"})

    rs = np.random.RandomState(5)
    hm = {}
    for i, (h, w) in enumerate(((8, 8), (5, 7))):
        a = (rs.standard_normal((3, h, w)) * rs.exponential(1.0, (1, h, w))).astype(np.float32)
        hwc = np.transpose(a, (1, 2, 0))
        s, ts = captum_normalize(hwc, "all")
        ab, ta = captum_normalize(np.abs(hwc), "absolute_value")
        hm["a%d" % i], hm["signed%d" % i], hm["abs%d" % i] = a, s.astype(np.float32), ab.astype(np.float32)
        hm["thr%d" % i] = np.array([ts, ta], dtype=np.float32)
    stio.save(os.path.join(OUT, "heatmap.safetensors"), hm, {"made_by": "tools/gen_fixtures_attr.py"})


if __name__ == "__main__":
    main()
