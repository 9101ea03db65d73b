#!/usr/bin/python3
"""Fixtures for tests/test_io_formats.c: safetensors written by tools/stio.py (the
writer the export script uses) and .npy files written by numpy itself.

    /usr/bin/python3 tools/gen_fixtures_io.py      # writes tests/fixtures/io/

The C tests know the synthetic values by formula (ramp), by literal (special), and
for the PyTorch tensors by a checksum stored in the metadata as a hex float:
    check:NAME = float.hex(sum over i of float(x[i]) * (i % 7 + 1)), summed in order
in double precision. Each product is exact in double, so C gets the same bits.
Files are tiny (a few KiB); make test never runs this script."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy", "torch")

import numpy as np
import numpy.lib.format as npf
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stio  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")


def ramp(shape):
    """(i*37 % 101 - 50) / 8: exact in float32, the same formula as the C test."""
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.int64)
    return (((i * 37) % 101 - 50) / 8.0).astype(np.float32).reshape(shape)


def special():
    # the C test lists the same values: inf, -inf, -0, smallest denormal, FLT_MAX,
    # 1/3 rounded to float, NaN, 2^24 + 1 (rounds to 2^24)
    return np.array([np.inf, -np.inf, -0.0, 2.0 ** -149, 3.4028234663852886e38, 1 / 3, np.nan, 16777217],
                    dtype=np.float32)


def checksum(a):
    s = 0.0
    for i, v in enumerate(np.asarray(a).reshape(-1)):
        s += float(v) * (i % 7 + 1)
    return float.hex(s)


def main():
    os.makedirs(OUT, exist_ok=True)

    # synthetic safetensors: every shape kind, both dtypes, non-ASCII metadata
    tensors = {
        "ramp": ramp((2, 3, 4)),
        "scalar": np.array(0.1, dtype=np.float32),
        "special": special(),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "ids": np.array([0, -1, 2 ** 40 + 5, 2 ** 63 - 1, -2 ** 63], dtype=np.int64),
        "bn.num_batches_tracked": torch.tensor(1234567),  # int64, shape []
    }
    meta = {
        "input_size": "3x32x32",
        "classes": json.dumps(["cat", "d\u00f6g", "\U0001F431"]),  # ensure_ascii: \u escapes, one surrogate pair
        "note": 'quote " backslash \\ newline \n tab \t',
    }
    stio.save(os.path.join(OUT, "synthetic.safetensors"), tensors, meta)

    # a real PyTorch state_dict: conv + batch norm after one training step
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(6, 2))
    net.train()
    net(torch.randn(2, 3, 8, 8))
    sd = net.state_dict()
    meta = {"check:" + k: checksum(v.numpy()) for k, v in sd.items() if v.dtype == torch.float32}
    stio.save(os.path.join(OUT, "torch_small.safetensors"), sd, meta)
    # the conv weight also as .npy, to cross-check the two readers
    np.save(os.path.join(OUT, "torch_conv_weight.npy"), sd["0.weight"].numpy())

    # npy, every header version and shape kind
    np.save(os.path.join(OUT, "ramp_v1.npy"), ramp((2, 3, 4)))
    for ver in ((2, 0), (3, 0)):
        with open(os.path.join(OUT, "ramp_v%d.npy" % ver[0]), "wb") as f:
            npf.write_array(f, ramp((3, 5)), version=ver)
    np.save(os.path.join(OUT, "scalar.npy"), np.array(0.1, dtype=np.float32))
    np.save(os.path.join(OUT, "empty.npy"), np.zeros((0, 5), dtype=np.float32))
    np.save(os.path.join(OUT, "special.npy"), special())
    np.save(os.path.join(OUT, "dims8.npy"), ramp((1, 2, 1, 2, 1, 2, 1, 3)))
    # refused kinds, as numpy really writes them
    np.save(os.path.join(OUT, "refuse_f8.npy"), ramp((2, 2)).astype(np.float64))
    np.save(os.path.join(OUT, "refuse_fortran.npy"), np.asfortranarray(ramp((2, 3))))
    np.save(os.path.join(OUT, "refuse_bigendian.npy"), ramp((2, 3)).astype(">f4"))
    for name in sorted(os.listdir(OUT)):
        print("%8d  %s" % (os.path.getsize(os.path.join(OUT, name)), name))


if __name__ == "__main__":
    main()
