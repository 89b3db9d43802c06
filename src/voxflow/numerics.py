"""The numerical settings voxflow's results depend on.

numpy's matrix products (Whisper's log-Mel features, the CAM++ speaker network) run through its
BLAS library, whose threads split a product's sums differently by how many there are: the last
bits change, and with them Whisper's words and probabilities. The thread count follows the
machine and the environment (Dask's workers start with ``OPENBLAS_NUM_THREADS=1``), so the
same file gave other bytes on a cluster than locally. voxflow therefore keeps BLAS at one
thread in its process: the results then depend on the input alone, and the model's own threads
(CTranslate2's) are untouched. One thread is also faster when the cores are busy with the
model: a busy two-core machine took 15.7 s for one clip's speaker embeddings with two BLAS
threads, 0.45 s with one.
"""

from __future__ import annotations

import functools


@functools.cache
def one_blas_thread() -> None:
    """Keep numpy's BLAS at one thread in this process (once; through threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
