"""pyannote's segmentation-3.0 (PyanNet, MIT) computed with numpy: who of up to three local
speakers is active in each 17 ms frame of a 10 s chunk, overlapping speech included.

The network: a SincNet front end (80 learned sinc band-pass filters of 251 taps at a stride of
10, absolute value, then two 5-tap convolutions; each stage max-pooled by 3, instance-normed
and leaky-ReLU'd), a 4-layer bidirectional LSTM of 128 units, two linear layers and a
log-softmax over the 7 "powerset" classes: nobody, each of three speakers alone, and each
pair of them. 10 s of audio gives 589 frames, 270 samples apart.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from voxflow.speakers.campplus import _conv1d
from voxflow.speakers.checkpoint import load_state_dict

CHUNK = 10.0  # seconds of audio the model was trained on
FRAME_STEP = 270  # samples between output frames (the strides 10·3·3·3)
FRAME_CENTER = 495  # sample at the centre of frame 0's receptive field
LOCAL_SPEAKERS = 3
# The powerset classes in the model's order: nobody, {0}, {1}, {2}, {0,1}, {0,2}, {1,2}.
CLASSES = tuple(c for size in range(3) for c in itertools.combinations(range(LOCAL_SPEAKERS), size))
ACTIVE = np.array([[k in c for k in range(LOCAL_SPEAKERS)] for c in CLASSES])  # class → speakers
_SINC_TAPS = 251
_SINC_STRIDE = 10
_MIN_LOW_HZ = 50.0
_MIN_BAND_HZ = 50.0
_NORM_EPS = 1e-5
_SLOPE = 0.01  # leaky ReLU


def frames_of(samples: int) -> int:
    """Output frames for an input of ``samples`` samples (convolutions and pools unpadded)."""
    n = (samples - _SINC_TAPS) // _SINC_STRIDE + 1
    for kernel in (None, 5, 5):
        if kernel:
            n -= kernel - 1
        n //= 3
    return max(n, 0)


def _sinc_filters(sd: dict[str, np.ndarray], rate: int = 16000) -> np.ndarray:
    """The 80 band-pass filters (80, 251): 40 even (cosine) then 40 odd (sine) ones, each
    from a learned low cut-off and band width, windowed by a Hamming window."""
    prefix = "sincnet.conv1d.0.filterbank."
    low = _MIN_LOW_HZ + np.abs(sd[prefix + "low_hz_"].astype(np.float64))
    high = np.clip(low + _MIN_BAND_HZ + np.abs(sd[prefix + "band_hz_"]), _MIN_LOW_HZ, rate / 2)
    n = sd[prefix + "n_"].astype(np.float64)  # 2π·t/rate for t = -125 … -1
    window = sd[prefix + "window_"].astype(np.float64)
    band = high - low
    even = (np.sin(high @ n) - np.sin(low @ n)) / (n / 2) * window
    odd = (np.cos(low @ n) - np.cos(high @ n)) / (n / 2) * window
    even = np.concatenate([even, 2 * band, even[:, ::-1]], axis=1)
    odd = np.concatenate([odd, np.zeros_like(band), -odd[:, ::-1]], axis=1)
    return (np.concatenate([even, odd]) / (2 * np.concatenate([band, band]))).astype(np.float32)


def _instance_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Each (item, channel) normalised over time, then scaled and shifted per channel."""
    mean = x.mean(axis=2, keepdims=True)
    var = x.var(axis=2, keepdims=True)
    return (x - mean) / np.sqrt(var + _NORM_EPS) * weight[:, None] + bias[:, None]


def _pool_norm_act(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Max-pool by 3, instance norm, leaky ReLU."""
    b, c, t = x.shape
    x = x[:, :, : t // 3 * 3].reshape(b, c, t // 3, 3).max(axis=3)
    x = _instance_norm(x, weight, bias)
    return np.where(x > 0, x, _SLOPE * x)


class _BiLstm:
    """One bidirectional LSTM layer; both directions step together in one batched product.

    The input, forget and output gates' rows are halved at load time so that one ``tanh``
    over all four gates gives them as ``σ(z) = (1 + tanh(z/2)) / 2``."""

    def __init__(self, sd: dict[str, np.ndarray], layer: int) -> None:
        scale = np.ones(512, dtype=np.float32)
        hidden = sd[f"lstm.weight_hh_l{layer}"].shape[1]
        scale[: 2 * hidden] = 0.5  # input and forget gates (PyTorch's order: i, f, g, o)
        scale[3 * hidden :] = 0.5  # output gate
        w_ih, w_hh, bias = [], [], []
        for suffix in ("", "_reverse"):
            name = f"l{layer}{suffix}"
            w_ih.append(sd[f"lstm.weight_ih_{name}"].T * scale)
            w_hh.append(sd[f"lstm.weight_hh_{name}"].T * scale)
            bias.append((sd[f"lstm.bias_ih_{name}"] + sd[f"lstm.bias_hh_{name}"]) * scale)
        self.hidden = hidden
        self.w_ih = np.stack(w_ih).astype(np.float32)  # (2, in, 4h)
        self.w_hh = np.stack(w_hh).astype(np.float32)  # (2, h, 4h)
        self.bias = np.stack(bias).astype(np.float32)[:, None, None, :]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(B, T, in) → (B, T, 2h): forward states, then backward ones."""
        b, t, _ = x.shape
        h = self.hidden
        gates_in = np.matmul(x[None], self.w_ih[:, None]) + self.bias  # (2, B, T, 4h)
        gates_in[1] = gates_in[1, :, ::-1].copy()  # the backward direction reads time reversed
        gates_in = np.ascontiguousarray(gates_in.transpose(2, 0, 1, 3))  # (T, 2, B, 4h)
        out = np.empty((t, 2, b, h), dtype=np.float32)
        state = np.zeros((2, b, h), dtype=np.float32)
        cell = np.zeros((2, b, h), dtype=np.float32)
        for step in range(t):
            z = np.tanh(gates_in[step] + np.matmul(state, self.w_hh))
            gate_i, gate_f, g, gate_o = (z[..., k * h : (k + 1) * h] for k in range(4))
            cell = 0.5 * ((1.0 + gate_f) * cell + (1.0 + gate_i) * g)
            state = 0.5 * (1.0 + gate_o) * np.tanh(cell)
            out[step] = state
        out[:, 1] = out[::-1, 1].copy()
        return out.transpose(2, 0, 1, 3).reshape(b, t, 2 * h)


class Segmentation:
    """The segmentation network with its weights: audio chunks to powerset log-probabilities."""

    def __init__(self, checkpoint: Path) -> None:
        sd = load_state_dict(checkpoint)
        self._sd = sd
        self._filters = _sinc_filters(sd)
        taps = -(-_SINC_TAPS // _SINC_STRIDE) * _SINC_STRIDE  # 260: whole strides of taps
        padded = np.zeros((len(self._filters), taps), dtype=np.float32)
        padded[:, :_SINC_TAPS] = self._filters
        self._phases = np.ascontiguousarray(padded.T)  # (260, 80)
        layers = 1 + max(int(k.split("_l")[1].split("_")[0]) for k in sd if "weight_ih_l" in k)
        self._lstm = [_BiLstm(sd, layer) for layer in range(layers)]

    def _sincnet(self, waves: np.ndarray) -> np.ndarray:
        """(B, samples) → (B, 60, frames)."""
        sd = self._sd
        x = _instance_norm(waves[:, None, :], sd["sincnet.wav_norm1d.weight"],
                           sd["sincnet.wav_norm1d.bias"])[:, 0]  # fmt: skip
        # The strided sinc convolution as a sum over whole strides of taps: out[t] =
        # Σ_j blocks[t + j] · phases[j], blocks being the signal cut into strides.
        count = (x.shape[1] - _SINC_TAPS) // _SINC_STRIDE + 1
        taps = len(self._phases) // _SINC_STRIDE
        need = (count + taps - 1) * _SINC_STRIDE
        x = np.pad(x, ((0, 0), (0, max(0, need - x.shape[1]))))[:, :need]
        blocks = x.reshape(len(x), -1, _SINC_STRIDE)
        windows = np.lib.stride_tricks.sliding_window_view(blocks, taps, axis=1)
        frames = np.ascontiguousarray(windows.transpose(0, 1, 3, 2)).reshape(len(x), count, -1)
        out = frames @ self._phases
        x = _pool_norm_act(np.abs(out.transpose(0, 2, 1)), sd["sincnet.norm1d.0.weight"],
                           sd["sincnet.norm1d.0.bias"])  # fmt: skip
        for k in (1, 2):
            conv, norm = f"sincnet.conv1d.{k}", f"sincnet.norm1d.{k}"
            x = _conv1d(x, sd[f"{conv}.weight"]) + sd[f"{conv}.bias"][:, None]
            x = _pool_norm_act(x, sd[f"{norm}.weight"], sd[f"{norm}.bias"])
        return x

    def classes(self, waves: np.ndarray) -> np.ndarray:
        """The most likely powerset class of each frame (B, frames), as bytes."""
        return self.log_probs(waves).argmax(axis=2).astype(np.uint8)

    def log_probs(self, waves: np.ndarray) -> np.ndarray:
        """Powerset log-probabilities (B, frames, 7) of a batch of equally long chunks of
        16 kHz audio (B, samples)."""
        sd = self._sd
        waves = np.asarray(waves, dtype=np.float32)
        x = np.concatenate([self._sincnet(w[None]) for w in waves]).transpose(0, 2, 1)
        for layer in self._lstm:
            x = layer(x)
        for k in (0, 1):
            x = x @ sd[f"linear.{k}.weight"].T + sd[f"linear.{k}.bias"]
            x = np.where(x > 0, x, _SLOPE * x)
        logits = x @ sd["classifier.weight"].T + sd["classifier.bias"]
        top = logits.max(axis=2, keepdims=True)
        return logits - top - np.log(np.exp(logits - top).sum(axis=2, keepdims=True))
