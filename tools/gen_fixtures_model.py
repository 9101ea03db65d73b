#!/usr/bin/python3
"""gen_fixtures_model: reference values for tests/test_model.c from torchvision.

Builds width-reduced torchvision models with torchvision's own code (so topology,
module order and state_dict keys are torchvision's):
  vgg16:    torchvision.models.vgg.VGG over make_layers(cfg "D" with every channel
            count / 32) and the classifier's three Linears replaced (hidden 16)
  resnet18: torchvision.models.resnet.ResNet(BasicBlock, [2,2,2,2]) with conv1, bn1,
            layer1..4 (via ResNet._make_layer) and fc rebuilt at width 1/32
Parameters are randomised beyond torchvision's init (BN affine and running stats,
conv and linear biases) so that every term matters.

Writes tests/fixtures/model/{vgg16,resnet18}_w.safetensors (the state_dict as
torchvision orders it, num_batches_tracked included) and *_ref.safetensors:
  x32 [2,3,32,32], r32 [2,K]   input and the loss weights, L = sum(logits * r)
  logits32_eval, dx32_eval, grad_eval.<param>      model.eval()
  logits32_train, dx32_train, grad_train.<param>   model.train(), see dropout below
                         (vgg16: no grad_train, they equal grad_eval, asserted here)
  after_train.<buffer>   BN running mean/var after that one train-mode forward
  x40 [2,3,40,48], r40, logits40_eval, dx40_eval, logits40_train, dx40_train
Dropout: PyTorch's dropout masks cannot be reproduced in C, so in "train mode" the
Dropout modules are put back in eval mode (train mode = BN batch statistics only).
The C test matches this by setting the dropout probability of its layers to 0; the
C dropout itself is checked by determinism and finite differences.

Run: /usr/bin/python3 tools/gen_fixtures_model.py   (from the repository root)
"""
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("torch", "torchvision")

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")


def ch(base, width):
    return max(1, int(base * width + 0.5))


def small_vgg16(width, hidden, K):
    cfg = [v if v == "M" else ch(v, width) for v in torchvision.models.vgg.cfgs["D"]]
    m = torchvision.models.vgg.VGG(torchvision.models.vgg.make_layers(cfg), num_classes=K)
    c = cfg[-2]
    m.classifier[0] = nn.Linear(c * 7 * 7, hidden)
    m.classifier[3] = nn.Linear(hidden, hidden)
    m.classifier[6] = nn.Linear(hidden, K)
    return m


def small_resnet18(width, K):
    from torchvision.models.resnet import BasicBlock, ResNet
    m = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=K)
    c = [ch(b, width) for b in (64, 128, 256, 512)]
    m.inplanes = c[0]
    m.conv1 = nn.Conv2d(3, c[0], kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(c[0])
    m.layer1 = m._make_layer(BasicBlock, c[0], 2)
    m.layer2 = m._make_layer(BasicBlock, c[1], 2, stride=2)
    m.layer3 = m._make_layer(BasicBlock, c[2], 2, stride=2)
    m.layer4 = m._make_layer(BasicBlock, c[3], 2, stride=2)
    m.fc = nn.Linear(c[3], K)
    return m


def randomise(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.2)
                mod.running_mean.normal_(0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
                mod.num_batches_tracked.fill_(5)
            elif isinstance(mod, nn.Conv2d) and mod.bias is not None:
                mod.bias.normal_(0, 0.1)
            elif isinstance(mod, nn.Linear):
                mod.weight.normal_(0, 1.0 / mod.in_features ** 0.5)
                mod.bias.normal_(0, 0.1)


def run(m, x, r, train):
    """logits, dx and parameter gradients of L = sum(logits * r)."""
    m.train(train)
    for mod in m.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()  # deterministic: dropout off in train mode (see the docstring)
    m.zero_grad()
    x = x.clone().requires_grad_(True)
    y = m(x)
    (y * r).sum().backward()
    grads = {k: p.grad.detach().clone() for k, p in m.named_parameters()}
    return y.detach(), x.grad.detach(), grads


def make(name, model, K, meta):
    torch.manual_seed(1)
    randomise(model)
    w_path = os.path.join(OUT, name + "_w.safetensors")
    stio.save(w_path, model.state_dict(), meta)
    ref = {}
    has_bn = any(isinstance(mod, nn.BatchNorm2d) for mod in model.modules())
    x32, r32 = torch.randn(2, 3, 32, 32), torch.randn(2, K)
    x40, r40 = torch.randn(2, 3, 40, 48), torch.randn(2, K)
    ref["x32"], ref["r32"], ref["x40"], ref["r40"] = x32, r32, x40, r40

    m = copy.deepcopy(model)
    y, dx, g = run(m, x32, r32, False)
    ref["logits32_eval"], ref["dx32_eval"] = y, dx
    for k, v in g.items():
        ref["grad_eval." + k] = v
    y, dx, g = run(m, x32, r32, True)  # updates m's running stats
    ref["logits32_train"], ref["dx32_train"] = y, dx
    for k, v in g.items():
        if has_bn:
            ref["grad_train." + k] = v
        else:  # no BN and dropout off: the same as eval; stored once (the test knows)
            assert torch.equal(v, ref["grad_eval." + k])
    for k, v in m.state_dict().items():
        if "running" in k:
            ref["after_train." + k] = v

    m = copy.deepcopy(model)
    y, dx, _ = run(m, x40, r40, False)
    ref["logits40_eval"], ref["dx40_eval"] = y, dx
    y, dx, _ = run(m, x40, r40, True)
    ref["logits40_train"], ref["dx40_train"] = y, dx
    ref_path = os.path.join(OUT, name + "_ref.safetensors")
    stio.save(ref_path, ref)
    n = sum(p.numel() for p in model.parameters())
    print("%s: %d parameters, %s %d bytes, %s %d bytes" % (name, n, w_path, os.path.getsize(w_path), ref_path,
                                                          os.path.getsize(ref_path)))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    make("vgg16", small_vgg16(1 / 32, 16, 5), 5, None)
    torch.manual_seed(0)
    meta = {"input_size": "3x32x32", "mean": "0.485,0.456,0.406", "std": "0.229,0.224,0.225",
            "classes": '["cat", "dog \\"big\\"", "\\u00e9l\\u00e8ve"]', "note": "kept as it is"}
    make("resnet18", small_resnet18(1 / 32, 3), 3, meta)


if __name__ == "__main__":
    main()
