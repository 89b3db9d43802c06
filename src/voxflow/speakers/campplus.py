"""CAM++ speaker embeddings (3D-Speaker's zh/en model) computed with numpy.

The network is the published CAM++ architecture: a 2-D convolution front end (FCM) over 80
Kaldi filterbanks, a TDNN, three densely connected TDNN blocks whose layers are gated by
context-aware masks, mean+std pooling and a linear layer to 192 values. Batch norms are folded
into scale and shift at load time; convolutions are sums of matrix products over kernel taps,
so a window of speech costs a few dozen BLAS calls and no deep-learning runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.speakers.checkpoint import load_state_dict

N_MELS = 80
FRAME = 400  # 25 ms
HOP = 160  # 10 ms
FFT = 512
SEG_POOL = 100  # frames per segment of the context-aware mask
_BN_EPS = 1e-5
_BLOCKS = ((12, 1), (24, 2), (16, 2))  # (layers, dilation) of the three dense blocks


def _mel_banks() -> np.ndarray:
    """Kaldi's triangular mel filters over the first FFT/2 bins (20 Hz to Nyquist)."""

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    low, high = mel(20.0), mel(SAMPLE_RATE / 2)
    delta = (high - low) / (N_MELS + 1)
    edges = low + delta * np.arange(N_MELS + 2)
    bins = mel(SAMPLE_RATE / FFT * np.arange(FFT // 2))[None, :]
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins - left) / (center - left)
    down = (right - bins) / (right - center)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


_MELS = _mel_banks()
_WINDOW = ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / (FRAME - 1))) ** 0.85).astype(
    np.float32
)


def fbank(samples: np.ndarray) -> np.ndarray:
    """Log mel filterbanks as Kaldi computes them (frames, 80), mean-normalised over time."""
    x = np.asarray(samples, dtype=np.float32)
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    count = 1 + (len(x) - FRAME) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP][:count].astype(np.float32)
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasized = frames.copy()
    emphasized[:, 1:] -= 0.97 * frames[:, :-1]
    emphasized[:, 0] -= 0.97 * frames[:, 0]
    spectrum = np.fft.rfft(emphasized * _WINDOW, n=FFT)[:, : FFT // 2]
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    feats = np.log(np.maximum(power @ _MELS.T, np.finfo(np.float32).eps))
    return feats - feats.mean(axis=0, keepdims=True)


def _conv1d(
    x: np.ndarray, w: np.ndarray, stride: int = 1, dilation: int = 1, pad: int = 0
) -> np.ndarray:
    """(B, C, T) * (O, C, K) → (B, O, T'): one matrix product per kernel tap."""
    out_ch, _, k = w.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad)))
    t_out = (x.shape[2] - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((x.shape[0], out_ch, t_out), dtype=np.float32)
    for tap in range(k):
        a = tap * dilation
        out += w[:, :, tap] @ x[:, :, a : a + stride * (t_out - 1) + 1 : stride]
    return out


def _conv2d(x: np.ndarray, w: np.ndarray, stride_f: int = 1) -> np.ndarray:
    """(B, C, F, T) * (O, C, kf, kt) with 'same' padding in time and stride in frequency."""
    b, c, f, t = x.shape
    out_ch, _, kf, kt = w.shape
    pf, pt = kf // 2, kt // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pf, pf), (pt, pt)))
    f_out = (f + 2 * pf - kf) // stride_f + 1
    out = np.zeros((b, out_ch, f_out * t), dtype=np.float32)
    for i in range(kf):
        for j in range(kt):
            patch = xp[:, :, i : i + stride_f * (f_out - 1) + 1 : stride_f, j : j + t]
            out += w[:, :, i, j] @ patch.reshape(b, c, f_out * t)
    return out.reshape(b, out_ch, f_out, t)


class _Norm:
    """A batch norm in inference mode, as a per-channel scale and shift."""

    def __init__(self, sd: dict[str, np.ndarray], name: str) -> None:
        mean, var = sd[f"{name}.running_mean"], sd[f"{name}.running_var"]
        scale = 1.0 / np.sqrt(var + _BN_EPS)
        shift = -mean * scale
        if f"{name}.weight" in sd:
            shift = shift * sd[f"{name}.weight"] + sd[f"{name}.bias"]
            scale = scale * sd[f"{name}.weight"]
        self.scale, self.shift = scale.astype(np.float32), shift.astype(np.float32)

    def __call__(self, x: np.ndarray, relu: bool = False) -> np.ndarray:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        y = x * self.scale.reshape(shape) + self.shift.reshape(shape)
        return np.maximum(y, 0.0) if relu else y


def _seg_pool(x: np.ndarray) -> np.ndarray:
    """Each frame's mean over its 100-frame segment (the last segment may be shorter)."""
    b, c, t = x.shape
    full = (t + SEG_POOL - 1) // SEG_POOL
    padded = np.pad(x, ((0, 0), (0, 0), (0, full * SEG_POOL - t)))
    counts = np.minimum(SEG_POOL, t - SEG_POOL * np.arange(full)).astype(np.float32)
    means = padded.reshape(b, c, full, SEG_POOL).sum(axis=3) / counts
    return np.repeat(means, SEG_POOL, axis=2)[:, :, :t]


class CamPlusPlus:
    """The CAM++ network with its weights, mapping filterbank frames to speaker embeddings."""

    def __init__(self, checkpoint: Path) -> None:
        sd = load_state_dict(checkpoint)
        self._sd = sd
        self._norms: dict[str, _Norm] = {}
        self.dim = int(sd["xvector.dense.linear.weight"].shape[0])

    def _bn(self, name: str) -> _Norm:
        if name not in self._norms:
            self._norms[name] = _Norm(self._sd, name)
        return self._norms[name]

    def _res_block(self, x: np.ndarray, name: str, stride: int) -> np.ndarray:
        sd = self._sd
        out = self._bn(f"{name}.bn1")(_conv2d(x, sd[f"{name}.conv1.weight"], stride), relu=True)
        out = self._bn(f"{name}.bn2")(_conv2d(out, sd[f"{name}.conv2.weight"]))
        if f"{name}.shortcut.0.weight" in sd:
            x = self._bn(f"{name}.shortcut.1")(_conv2d(x, sd[f"{name}.shortcut.0.weight"], stride))
        return np.maximum(out + x, 0.0)

    def _head(self, feats: np.ndarray) -> np.ndarray:
        """FCM: (B, T, 80) → (B, 32·10, T)."""
        x = feats.transpose(0, 2, 1)[:, None]
        x = self._bn("head.bn1")(_conv2d(x, self._sd["head.conv1.weight"]), relu=True)
        for layer in ("layer1", "layer2"):
            x = self._res_block(x, f"head.{layer}.0", 2)
            x = self._res_block(x, f"head.{layer}.1", 1)
        x = self._bn("head.bn2")(_conv2d(x, self._sd["head.conv2.weight"], 2), relu=True)
        b, c, f, t = x.shape
        return x.reshape(b, c * f, t)

    def _dense_layer(self, x: np.ndarray, name: str, dilation: int) -> np.ndarray:
        sd = self._sd
        h = self._bn(f"{name}.nonlinear1.batchnorm")(x, relu=True)
        h = _conv1d(h, sd[f"{name}.linear1.weight"])
        h = self._bn(f"{name}.nonlinear2.batchnorm")(h, relu=True)
        cam = f"{name}.cam_layer"
        local = _conv1d(h, sd[f"{cam}.linear_local.weight"], dilation=dilation, pad=dilation)
        context = h.mean(axis=2, keepdims=True) + _seg_pool(h)
        w1, b1 = sd[f"{cam}.linear1.weight"][:, :, 0], sd[f"{cam}.linear1.bias"]
        w2, b2 = sd[f"{cam}.linear2.weight"][:, :, 0], sd[f"{cam}.linear2.bias"]
        gate = np.maximum(w1 @ context + b1[:, None], 0.0)
        gate = w2 @ gate + b2[:, None]
        return local / (1.0 + np.exp(-gate))

    def embed(self, feats: np.ndarray) -> np.ndarray:
        """Embeddings (B, 192) of a batch of equally long filterbank sequences (B, T, 80)."""
        sd = self._sd
        x = self._head(feats.astype(np.float32))
        x = _conv1d(x, sd["xvector.tdnn.linear.weight"], stride=2, pad=2)
        x = self._bn("xvector.tdnn.nonlinear.batchnorm")(x, relu=True)
        for index, (layers, dilation) in enumerate(_BLOCKS, start=1):
            for layer in range(1, layers + 1):
                name = f"xvector.block{index}.tdnnd{layer}"
                x = np.concatenate([x, self._dense_layer(x, name, dilation)], axis=1)
            transit = f"xvector.transit{index}"
            x = self._bn(f"{transit}.nonlinear.batchnorm")(x, relu=True)
            x = _conv1d(x, sd[f"{transit}.linear.weight"])
        x = self._bn("xvector.out_nonlinear.batchnorm")(x, relu=True)
        std = x.std(axis=2, ddof=1) if x.shape[2] > 1 else np.full(x.shape[:2], 1e-2)
        stats = np.concatenate([x.mean(axis=2), std], axis=1)
        out = stats @ sd["xvector.dense.linear.weight"][:, :, 0].T
        return self._bn("xvector.dense.nonlinear.batchnorm")(out)
