"""Non-default sample values for every message type (shared by the runtime tests)."""

from __future__ import annotations

import numpy as np

from robot_stack.runtime import msgs

_INT_RANGES = {
    "int8": (-128, 127), "uint8": (0, 255), "byte": (0, 255), "char": (0, 255),
    "int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-2**31, 2**31 - 1),
    "uint32": (0, 2**32 - 1), "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1),
}
_TEXTS = ["", "a", "frame_ü", "wrist camera 📷", "x" * 37]


def _prim(name: str, rng: np.random.Generator):
    if name == "bool":
        return bool(rng.integers(2))
    if name == "string":
        return _TEXTS[rng.integers(len(_TEXTS))]
    if name in ("float32", "float64"):
        v = rng.normal() * 1e3
        return float(np.float32(v)) if name == "float32" else v
    lo, hi = _INT_RANGES[name]
    return int(rng.integers(lo, hi, endpoint=True, dtype=np.uint64 if name == "uint64" else np.int64))


def sample(cls: type[msgs.Message], rng: np.random.Generator):
    """A message with random values in every field (sequences of 0-4 items, edge-case strings)."""
    values = {}
    for name, kind in cls._spec:
        if cls is msgs.DiagnosticStatus and name == "level":
            # ROS 'byte' (octet); rosbags packs it as signed, so keep to the real levels 0..3
            values[name] = int(rng.integers(0, 4))
        elif isinstance(kind, msgs.Prim):
            values[name] = _prim(kind.name, rng)
        elif isinstance(kind, msgs.Seq):
            n = kind.length if kind.length is not None else int(rng.integers(0, 5))
            if kind.elem == "string":
                values[name] = [_prim("string", rng) for _ in range(n)]
            elif isinstance(kind.elem, str):
                dtype = np.dtype(msgs.PRIMITIVE_DTYPES[kind.elem])
                values[name] = np.array([_prim(kind.elem, rng) for _ in range(n)], dtype=dtype)
            else:
                values[name] = [sample(kind.elem, rng) for _ in range(n)]
        else:
            values[name] = sample(kind, rng)
    return cls(**values)


def big_image(rng: np.random.Generator, width: int = 640, height: int = 480) -> msgs.Image:
    """A 640x480 rgb8 image with a stamped header."""
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return msgs.Image.from_numpy(pixels, "rgb8", msgs.Header(stamp=msgs.Time(sec=12, nanosec=345), frame_id="front"))
