"""stio: write and read safetensors files without the `safetensors` package
(Debian does not ship it). Used by the export script and the fixture generators.

    save(path, {"name": tensor_or_array, ...}, metadata={"key": "value"})
    load(path) -> (dict name -> numpy array, metadata dict)

Tensors are stored in insertion order, C-contiguous, little-endian; torch tensors
are converted with .detach().cpu().numpy(). Supported dtypes: float32 (F32) and
int64 (I64)."""
import json
import struct

import numpy as np

_DT = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
_NP = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def _as_array(v):
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    a = np.ascontiguousarray(v)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    if a.dtype not in _DT:
        raise ValueError("unsupported dtype %s" % a.dtype)
    return a


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, v in tensors.items():
        a = _as_array(v)
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    import os
    os.replace(path + ".tmp", path)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + end], dtype=_NP[e["dtype"]]).reshape(e["shape"]).copy()
    return out, meta
