"""The numerical setting a transcript's bytes depend on beyond the input: numpy's BLAS threads.

numpy's matrix products (Whisper's log-Mel features, the CAM++ speaker network) split their sums
among BLAS threads differently by how many there are: the last bits change, and with them
Whisper's words and probabilities. A process keeps its count (the machine's cores, unless the
environment says otherwise), so one machine gives the same bytes on every run, and the features
are the ones plain faster-whisper computes there. Dask's workers, though, start with
``OPENBLAS_NUM_THREADS=1``: a cluster worker takes the client's count instead, so that a cluster
run writes a local run's bytes. (threadpoolctl, part of the ``cluster`` extra, reads and sets it.)
"""

from __future__ import annotations


def blas_threads() -> int | None:
    """This process's BLAS thread count (None when numpy reports no BLAS library)."""
    from threadpoolctl import threadpool_info

    counts = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    return max(counts) if counts else None


def use_blas_threads(count: int | None) -> None:
    """Run this process's BLAS with ``count`` threads (None: as it is)."""
    if count is None:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=count, user_api="blas")
