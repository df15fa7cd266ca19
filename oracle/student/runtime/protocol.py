"""The messages between the grader and an implementation's worker process: JSON lines.

No pickle: the grader never unpickles anything an implementation produced.
Arrays travel as {"__nd__": shape, "v": flat values}; dicts (whose keys may be
layer numbers) as {"__dict__": [[key, value], ...]}; tuples as {"__tuple__": [...]};
NaN and ±inf as JSON's NaN/Infinity tokens.
"""

from __future__ import annotations

import json
import math

import numpy as np

MAX_MESSAGE = 64 * 1024 * 1024  # a larger answer is refused, not read into memory


class ProtocolError(ValueError):
    """An answer that is not a well-formed message."""


_ND = np.ndarray  # its methods, called unbound: an ndarray subclass cannot change what is sent


def encode(obj):
    if isinstance(obj, np.ndarray):
        dtype = _ND.dtype.__get__(obj)
        if not (np.issubdtype(dtype, np.number) or dtype.kind == "b"):
            raise TypeError(f"an array of dtype {dtype}")
        if np.issubdtype(dtype, np.complexfloating):
            raise TypeError("a complex array")
        return {"__nd__": list(_ND.shape.__get__(obj)), "v": _ND.tolist(_ND.ravel(_ND.astype(obj, float)))}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v) for v in obj]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    raise TypeError(f"an object of type {type(obj).__name__}")


def decode(obj, depth=0):
    if depth > 20:
        raise ProtocolError("nested too deeply")
    if isinstance(obj, dict):
        if set(obj) == {"__nd__", "v"}:
            shape, values = obj["__nd__"], obj["v"]
            if not (isinstance(shape, list) and all(isinstance(n, (int, float)) and n >= 0 for n in shape)):
                raise ProtocolError("bad array shape")
            if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
                raise ProtocolError("bad array values")
            shape = tuple(int(n) for n in shape)
            if math.prod(shape) != len(values):
                raise ProtocolError("array size does not match its shape")
            return np.array(values, dtype=float).reshape(shape)
        if set(obj) == {"__tuple__"} and isinstance(obj["__tuple__"], list):
            return tuple(decode(v, depth + 1) for v in obj["__tuple__"])
        if set(obj) == {"__dict__"} and isinstance(obj["__dict__"], list):
            out = {}
            for pair in obj["__dict__"]:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ProtocolError("bad dict entry")
                key = decode(pair[0], depth + 1)
                if isinstance(key, float) and key.is_integer():
                    key = int(key)
                if not isinstance(key, (int, str)):
                    raise ProtocolError("bad dict key")
                out[key] = decode(pair[1], depth + 1)
            return out
        return {str(k): decode(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v, depth + 1) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ProtocolError(f"unexpected {type(obj).__name__}")


def dumps(message) -> str:
    return json.dumps(message, allow_nan=True, separators=(",", ":"))


def loads(line: str):
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from None
