"""Speaker diarization: who spoke when, from speaker embeddings of the speech as it passes.

``DiarizeOptions`` says how many speakers to look for; ``SpeakerTracker`` collects embeddings
(and segmentation frames) of each clip (``Voiceprints``) and finds the turns and where voices
overlap (``Diarization``); ``label`` puts the turns on a transcript's segments and words;
``join_sessions`` gives an engine's per-session speaker ids one label per voice.
"""

from voxflow.speakers.assign import join_sessions, label, speakers
from voxflow.speakers.diarize import (
    Diarization,
    DiarizeOptions,
    SpeakerTracker,
    Turn,
    Voiceprints,
)
from voxflow.speakers.overlap import Overlap

__all__ = [
    "Diarization",
    "DiarizeOptions",
    "Overlap",
    "SpeakerTracker",
    "Turn",
    "Voiceprints",
    "join_sessions",
    "label",
    "speakers",
]
