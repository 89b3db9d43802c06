"""Reading PyTorch checkpoints (``torch.save`` zip files) into numpy arrays, without torch.

A checkpoint is a zip of one pickle plus one raw little-endian file per tensor storage. The
unpickler here builds only what a state dict needs (tensors, ordered dicts, plain values); any
other class named in the pickle becomes an inert placeholder, so loading runs no foreign code.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from voxflow.errors import ConfigError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Placeholder:
    """Stands for a class the checkpoint names that a state dict does not need."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> np.ndarray:
    """A tensor view of its storage, copied into a contiguous array of its own."""
    if not size:
        return storage[offset].copy()
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * item for s in stride]
    )
    return np.ascontiguousarray(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, archive: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        return type(name, (_Placeholder,), {})

    def persistent_load(self, pid: Any) -> np.ndarray:
        _, dtype, key, _location, _numel = pid
        if key not in self._storages:
            raw = self._archive.read(f"{self._prefix}data/{key}")
            self._storages[key] = np.frombuffer(raw, dtype=dtype)
        return self._storages[key]


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a checkpoint by name (a Lightning checkpoint's ``state_dict`` entry)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            prefix = pkl[: -len("data.pkl")]
            with archive.open(pkl) as file:
                payload = _Unpickler(file, archive, prefix).load()
    except (OSError, zipfile.BadZipFile, StopIteration, pickle.UnpicklingError) as exc:
        raise ConfigError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if isinstance(payload, dict) and "state_dict" in payload:
        payload = payload["state_dict"]
    return {k: v for k, v in payload.items() if isinstance(v, np.ndarray)}
