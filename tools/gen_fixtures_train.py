#!/usr/bin/python3
"""gen_fixtures_train: reference values for the training tests (tests/test_train.c),
computed with PyTorch 1.13 + torchvision. Writes tests/fixtures/train/:

  loss.safetensors     mse and cross-entropy values and gradients (mean reduction),
                       including rows with huge logits (log-sum-exp stability)
  adam.safetensors     torch.optim.Adam on a small vector: 5 steps, with and without
                       weight decay; the parameters after every step
  batch.safetensors    the fixed batch: x [6,3,32,32] in [0,1), labels [6] (I64),
                       targets [6,3] (for MSE)
  vgg16_init / vgg16_final / vgg16_steps.safetensors
                       vgg16 at width 1/32 (channels 2..16), hidden 32, 3 classes, 5 Adam steps with cross-entropy on a fixed
                       batch, eval mode (VGG16 has no batch norm, so eval mode differs
                       from train mode only by dropout: eval mode is the deterministic
                       choice, identical to dropout p = 0)
  resnet18_init / resnet18_final / resnet18_steps.safetensors
                       resnet18 at width 1/16 (channels 4..32), 3 classes, 5 Adam steps with cross-entropy in train
                       mode (batch statistics, running statistics updated)
  resnet18_mse_final / resnet18_mse_steps.safetensors
                       the same initial weights, 5 Adam steps with MSE to fixed targets,
                       train mode, weight decay 0.01 (the GAD support-model loss)

*_init and *_final are torchvision state_dicts (num_batches_tracked as I64), *_steps
hold the 5 losses (each before its step). Widths are small so that the files stay
small (about 0.9 MiB in all): VGG_W, VGG_H, RES_W in the environment change them
for a one-off check at other sizes (the C test reads widths from the files).
Learning rate and weight decay are float32 values (as the C side stores them) given
to torch as Python floats. Run from the repository root: /usr/bin/python3 tools/gen_fixtures_train.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy", "torch", "torchvision")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, ResNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

OUT = "tests/fixtures/train"
VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
f32 = lambda v: float(np.float32(v))  # noqa: E731


def ch(base, width):
    """Channel count for a width multiplier (C side: round(base*width), at least 1)."""
    return max(1, int(np.floor(base * width + 0.5)))


class VGG16(nn.Module):
    """torchvision's VGG (no batch norm) with scaled channels and hidden size; same
    state_dict keys, same initialisation."""

    def __init__(self, width, hidden, num_classes):
        super().__init__()
        layers, c_in = [], 3
        for v in VGG_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                c = ch(v, width)
                layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True)]
                c_in = c
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c_in * 49, hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class ResNet18(ResNet):
    """torchvision's ResNet with BasicBlock [2,2,2,2] and scaled channels."""

    def __init__(self, width, num_classes):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.dilation, self.groups, self.base_width = 1, 1, 64
        c = [ch(b, width) for b in (64, 128, 256, 512)]
        self.inplanes = c[0]
        self.conv1 = nn.Conv2d(3, c[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(BasicBlock, c[0], 2)
        self.layer2 = self._make_layer(BasicBlock, c[1], 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, c[2], 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, c[3], 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_steps(model, x, loss_fn, lr, wd, train):
    """5 Adam steps on the fixed batch; returns the 5 losses (before each step)."""
    model.train(train)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = loss_fn(model(x))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return torch.tensor(losses, dtype=torch.float32)


def size(path):
    return os.path.getsize(path) // 1024


def gen_loss():
    g = torch.Generator().manual_seed(1)
    y = torch.randn(7, 5, generator=g)
    t = torch.randn(7, 5, generator=g)
    yr = y.clone().requires_grad_(True)
    mse = F.mse_loss(yr, t)
    mse.backward()
    z = torch.randn(6, 4, generator=g) * 3
    z[4] += 1000.0          # huge logits: naive exp overflows
    z[5] = torch.tensor([-1000.0, 50.0, 50.0, -3.0])
    lab = torch.tensor([0, 3, 1, 2, 2, 1])
    zr = z.clone().requires_grad_(True)
    ce = F.cross_entropy(zr, lab)
    ce.backward()
    stio.save(f"{OUT}/loss.safetensors", {
        "mse_y": y, "mse_t": t, "mse_loss": mse.detach().reshape(1), "mse_grad": yr.grad,
        "ce_logits": z, "ce_labels": lab.long(), "ce_loss": ce.detach().reshape(1), "ce_grad": zr.grad})


def gen_adam():
    g = torch.Generator().manual_seed(2)
    n = 64
    p0 = torch.randn(n, generator=g)
    p0[:4] = torch.tensor([0.0, -0.0, 1e-30, -2.5])
    grads = torch.randn(5, n, generator=g) * (10.0 ** torch.randint(-7, 2, (5, n), generator=g).float())
    grads[:, 8:12] = 0.0                  # never a gradient: Adam must leave these alone
    grads[2:, 12:16] = 0.0                # gradient only at first: moments carry on
    out = {"p0": p0, "grads": grads}
    for name, lr, wd in (("plain", 1e-3, 0.0), ("decay", 1e-2, 0.1)):
        p = p0.clone().requires_grad_(True)
        opt = torch.optim.Adam([p], lr=f32(lr), weight_decay=f32(wd))
        hist = []
        for s in range(5):
            p.grad = grads[s].clone()
            opt.step()
            hist.append(p.detach().clone())
        out[name] = torch.stack(hist)
    stio.save(f"{OUT}/adam.safetensors", out, {"plain": "lr=1e-3 wd=0", "decay": "lr=1e-2 wd=0.1"})


def gen_models(vgg_width, vgg_hidden, res_width):
    N, K = 6, 3
    g = torch.Generator().manual_seed(3)
    x = torch.rand(N, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    targets = torch.randn(N, K, generator=g) * 2
    lr = f32(1e-3)

    torch.manual_seed(10)
    vgg = VGG16(vgg_width, vgg_hidden, K)
    stio.save(f"{OUT}/vgg16_init.safetensors", state(vgg))
    losses = run_steps(vgg, x, lambda y: F.cross_entropy(y, labels), lr, 0.0, False)
    stio.save(f"{OUT}/vgg16_final.safetensors", state(vgg))
    stio.save(f"{OUT}/batch.safetensors", {"x": x, "labels": labels.long(), "targets": targets})
    stio.save(f"{OUT}/vgg16_steps.safetensors", {"losses": losses},
              {"lr": "1e-3", "weight_decay": "0", "mode": "eval", "loss": "cross_entropy"})
    print("vgg16 losses", losses.tolist())

    torch.manual_seed(11)
    res = ResNet18(res_width, K)
    init = state(res)
    stio.save(f"{OUT}/resnet18_init.safetensors", init)
    losses = run_steps(res, x, lambda y: F.cross_entropy(y, labels), lr, 0.0, True)
    stio.save(f"{OUT}/resnet18_final.safetensors", state(res))
    stio.save(f"{OUT}/resnet18_steps.safetensors", {"losses": losses},
              {"lr": "1e-3", "weight_decay": "0", "mode": "train", "loss": "cross_entropy"})
    print("resnet18 losses", losses.tolist())

    res.load_state_dict(init)
    losses = run_steps(res, x, lambda y: F.mse_loss(y, targets), lr, f32(0.01), True)
    stio.save(f"{OUT}/resnet18_mse_final.safetensors", state(res))
    stio.save(f"{OUT}/resnet18_mse_steps.safetensors", {"losses": losses},
              {"lr": "1e-3", "weight_decay": "0.01", "mode": "train", "loss": "mse"})
    print("resnet18 mse losses", losses.tolist())


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    gen_loss()
    gen_adam()
    gen_models(float(os.environ.get("VGG_W", 1 / 32)), int(os.environ.get("VGG_H", 32)),
               float(os.environ.get("RES_W", 1 / 16)))
    total = 0
    for f in sorted(os.listdir(OUT)):
        total += size(f"{OUT}/{f}")
        print("%-36s %5d KiB" % (f, size(f"{OUT}/{f}")))
    print("total %d KiB" % total)


if __name__ == "__main__":
    main()
