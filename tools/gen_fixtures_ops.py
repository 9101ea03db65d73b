#!/usr/bin/python3
"""gen_fixtures_ops: PyTorch reference values for the ops kernels (tests/test_conv.c, test_bn.c, test_pool.c,
test_linear.c, test_act.c).

Writes tests/fixtures/ops/*.safetensors with tools/stio.py: the inputs, parameters,
a random upstream gradient `dy`, the outputs and every gradient, for
  conv_*      torch.nn.functional.conv2d (several kernels / strides / paddings)
  bn_*        BatchNorm2d in train mode (+ running stats after the update) and eval
  maxpool_*   max_pool2d with return_indices (ResNet, VGG, ties, all-negative)
  avgpool_*   adaptive_avg_pool2d (upsampling, non-divisible, global)
  linear      torch.nn.functional.linear
  relu        relu with the standard gradient, and the deconvnet / guided rules
              computed here from their formulas
  dropout     dropout in eval mode (identity)
Hyper-parameters go into the metadata as decimal strings. Deterministic (seeded);
each file is a few KiB. Run: /usr/bin/python3 tools/gen_fixtures_ops.py"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("torch")

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stio import save  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "ops")


def grads(out, dy, *leaves):
    out.backward(dy)
    return [t.grad.detach().clone() if t.grad is not None else None for t in leaves]


def conv(name, N, C, H, W, K, kh, kw, s, p, bias):
    x = torch.randn(N, C, H, W, requires_grad=True)
    w = (torch.randn(K, C, kh, kw) / (C * kh * kw) ** 0.5).requires_grad_()
    b = torch.randn(K, requires_grad=True) if bias else None
    y = F.conv2d(x, w, b, stride=s, padding=p)
    dy = torch.randn_like(y)
    leaves = (x, w, b) if bias else (x, w)
    g = grads(y, dy, *leaves)
    t = {"x": x, "w": w}
    if bias:
        t["b"] = b
    t.update({"dy": dy, "y": y, "dx": g[0], "dw": g[1]})
    if bias:
        t["db"] = g[2]
    meta = {"sh": s[0], "sw": s[1], "ph": p[0], "pw": p[1], "bias": int(bias)}
    save(os.path.join(OUT, name + ".safetensors"), t, meta)


def bn(name, N, C, H, W):
    x = (torch.randn(N, C, H, W) * 2 + 1).requires_grad_()
    gamma = torch.randn(C).requires_grad_()
    beta = torch.randn(C).requires_grad_()
    rm0 = torch.randn(C) * 0.5
    rv0 = torch.rand(C) + 0.5
    dy = torch.randn(N, C, H, W)
    t = {"x": x.detach().clone(), "gamma": gamma.detach().clone(), "beta": beta.detach().clone(),
         "running_mean": rm0.clone(), "running_var": rv0.clone(), "dy": dy}
    # train: batch statistics, running stats updated with momentum 0.1
    rm, rv = rm0.clone(), rv0.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)
    gx, gg, gb = grads(y, dy, x, gamma, beta)
    # the saved statistics of the backward (biased variance)
    xd = x.detach().double()
    mean = xd.mean(dim=(0, 2, 3))
    invstd = 1.0 / torch.sqrt(xd.var(dim=(0, 2, 3), unbiased=False) + 1e-5)
    t.update({"y_train": y, "dx_train": gx, "dgamma_train": gg, "dbeta_train": gb,
              "running_mean_after": rm, "running_var_after": rv,
              "save_mean": mean.float(), "save_invstd": invstd.float()})
    for v in (x, gamma, beta):
        v.grad = None
    # eval: the running statistics given as input
    y = F.batch_norm(x, rm0, rv0, gamma, beta, training=False, eps=1e-5)
    gx, gg, gb = grads(y, dy, x, gamma, beta)
    t.update({"y_eval": y, "dx_eval": gx, "dgamma_eval": gg, "dbeta_eval": gb})
    save(os.path.join(OUT, name + ".safetensors"), t, {"momentum": "0.1", "eps": "1e-05"})


def maxpool(name, x, k, s, p):
    x = x.clone().requires_grad_()
    y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    dy = torch.randn_like(y)
    (gx,) = grads(y, dy, x)
    save(os.path.join(OUT, name + ".safetensors"),
         {"x": x, "dy": dy, "y": y, "argmax": idx.to(torch.int64), "dx": gx}, {"k": k, "s": s, "p": p})


def avgpool(name, N, C, H, W, Ho, Wo):
    x = torch.randn(N, C, H, W, requires_grad=True)
    y = F.adaptive_avg_pool2d(x, (Ho, Wo))
    dy = torch.randn_like(y)
    (gx,) = grads(y, dy, x)
    save(os.path.join(OUT, name + ".safetensors"), {"x": x, "dy": dy, "y": y, "dx": gx}, {"Ho": Ho, "Wo": Wo})


def linear(name, N, I, O):
    x = torch.randn(N, I, requires_grad=True)
    w = (torch.randn(O, I) / I ** 0.5).requires_grad_()
    b = torch.randn(O, requires_grad=True)
    y = F.linear(x, w, b)
    dy = torch.randn_like(y)
    gx, gw, gb = grads(y, dy, x, w, b)
    save(os.path.join(OUT, name + ".safetensors"),
         {"x": x, "w": w, "b": b, "dy": dy, "y": y, "dx": gx, "dw": gw, "db": gb})


def relu(name):
    x = torch.randn(2, 3, 5, 5)
    x[0, 0, 0, :] = 0.0  # exact zeros: no gradient passes (PyTorch: grad * (y > 0))
    x = x.requires_grad_()
    y = F.relu(x)
    dy = torch.randn_like(y)
    (gx,) = grads(y, dy, x)
    pos = (x.detach() > 0).float()
    deconv = F.relu(dy)            # Zeiler & Fergus: ReLU of the backward signal
    guided = F.relu(dy) * pos      # Springenberg et al.: both masks
    save(os.path.join(OUT, name + ".safetensors"),
         {"x": x, "dy": dy, "y": y, "dx_standard": gx, "dx_deconv": deconv, "dx_guided": guided})


def dropout(name):
    x = torch.randn(4, 50, requires_grad=True)
    y = F.dropout(x, p=0.5, training=False)
    dy = torch.randn_like(y)
    (gx,) = grads(y, dy, x)
    save(os.path.join(OUT, name + ".safetensors"), {"x": x, "dy": dy, "y": y, "dx": gx}, {"p": "0.5"})


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1234)
    conv("conv_3x3_s1_p1", 2, 3, 8, 8, 4, 3, 3, (1, 1), (1, 1), True)
    conv("conv_7x7_s2_p3", 2, 3, 15, 13, 5, 7, 7, (2, 2), (3, 3), True)
    conv("conv_1x1_s2_p0", 2, 6, 7, 7, 4, 1, 1, (2, 2), (0, 0), False)
    conv("conv_1x1_s1_p0", 2, 6, 5, 4, 3, 1, 1, (1, 1), (0, 0), True)
    conv("conv_3x3_s2_p1", 2, 4, 9, 6, 3, 3, 3, (2, 2), (1, 1), False)
    conv("conv_5x5_s1_p0", 1, 2, 9, 11, 3, 5, 5, (1, 1), (0, 0), True)
    conv("conv_3x3_s1_p1_nobias", 3, 2, 6, 10, 4, 3, 3, (1, 1), (1, 1), False)
    bn("bn_4x3x5x5", 4, 3, 5, 5)
    bn("bn_2x8x3x3", 2, 8, 3, 3)
    bn("bn_6x4x1x1", 6, 4, 1, 1)
    maxpool("maxpool_3x3_s2_p1", torch.randn(2, 3, 11, 10), 3, 2, 1)
    maxpool("maxpool_2x2_s2", torch.randn(2, 3, 8, 9), 2, 2, 0)
    maxpool("maxpool_ties", torch.randint(0, 3, (2, 2, 9, 9)).float(), 3, 2, 1)
    maxpool("maxpool_negative_pad", -torch.rand(1, 2, 7, 7) - 1.0, 3, 2, 1)
    avgpool("avgpool_1x1_to_7x7", 2, 3, 1, 1, 7, 7)
    avgpool("avgpool_5x5_to_7x7", 2, 3, 5, 5, 7, 7)
    avgpool("avgpool_9x7_to_3x3", 2, 3, 9, 7, 3, 3)
    avgpool("avgpool_7x7_to_1x1", 2, 4, 7, 7, 1, 1)
    avgpool("avgpool_10x6_to_4x4", 1, 2, 10, 6, 4, 4)
    linear("linear", 4, 37, 10)
    relu("relu")
    dropout("dropout_eval")


if __name__ == "__main__":
    main()
