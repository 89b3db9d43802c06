"""Crash-safe, resumable batch jobs: what is done, failed or pending, and atomic outputs.

``run_batch`` transcribes a list of inputs; with an output directory it keeps the job's state
in ``OUTDIR/.voxflow-job.sqlite`` so that running the same command again resumes: finished
inputs are skipped (if their outputs are still there), failed ones retried up to a limit,
changed ones redone. ``job_status`` summarises a job.
"""

from .plan import file_sha256, fingerprint
from .runner import BatchOptions, BatchResult, Outcome, run_batch
from .signals import exit_code
from .state import JOB_FILE, Item, JobState
from .status import FileStatus, JobStatus, format_status, job_status

__all__ = [
    "JOB_FILE",
    "BatchOptions",
    "BatchResult",
    "FileStatus",
    "Item",
    "JobState",
    "JobStatus",
    "Outcome",
    "exit_code",
    "file_sha256",
    "fingerprint",
    "format_status",
    "job_status",
    "run_batch",
]
