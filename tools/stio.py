#!/usr/bin/python3
"""stio: write and read safetensors files without the `safetensors` package
(Debian does not ship it). Used by the export script and the fixture generators.

    save(path, {"name": tensor_or_array, ...}, metadata={"key": "value"})
    load(path) -> (dict name -> numpy array, metadata dict)

Tensors are stored in insertion order, C-contiguous, little-endian; torch tensors
are converted with .detach().cpu().numpy(). Supported dtypes: float32 (F32) and
int64 (I64)."""
import json
import struct

import os
import sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import needs  # noqa: E402
needs.modules("numpy")

import numpy as np

_DT = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}
_NP = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


def _as_array(v):
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    a = np.asarray(v)
    # np.ascontiguousarray alone would turn a 0-d array (e.g. num_batches_tracked) into shape [1]
    a = np.ascontiguousarray(a).reshape(a.shape)
    if a.dtype.byteorder not in ("=", "|"):
        a = a.astype(a.dtype.newbyteorder("="))
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    if a.dtype not in _DT:
        raise ValueError("unsupported dtype %s (only float32, float64 -> float32, and int64)" % a.dtype)
    return a


def _meta_str(k, v):
    # a list or dict would silently become its Python repr, which is not JSON
    if not isinstance(v, (str, int, float)):
        raise TypeError("metadata %r: values must be strings (json.dumps lists first), got %s"
                        % (k, type(v).__name__))
    return str(v)


def save(path, tensors, metadata=None):
    import os
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): _meta_str(k, v) for k, v in metadata.items()}
    for name, v in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError("bad tensor name %r" % (name,))
        a = _as_array(v)
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)))
            f.write(h)
            for b in blobs:
                f.write(b)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        if e["dtype"] not in _NP:
            raise ValueError("%s: tensor %r has dtype %s (only F32 and I64)" % (path, name, e["dtype"]))
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + end], dtype=_NP[e["dtype"]]).reshape(e["shape"]).copy()
    return out, meta


if __name__ == "__main__":
    sys.exit("stio is a module for the other tools (import stio); ./tools/needs.py checks this Python")
