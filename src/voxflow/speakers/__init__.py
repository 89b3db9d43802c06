"""Speaker diarization: who spoke when, from speaker embeddings of the speech as it passes.

``DiarizeOptions`` says how many speakers to look for; ``SpeakerTracker`` collects embeddings
of each clip (``Voiceprints``) and finds the turns; ``label`` puts them on a transcript's
segments and words;
``join_sessions`` gives an engine's per-session speaker ids one label per voice.
"""

from voxflow.speakers.assign import join_sessions, label, speakers
from voxflow.speakers.diarize import DiarizeOptions, SpeakerTracker, Turn, Voiceprints

__all__ = [
    "DiarizeOptions",
    "SpeakerTracker",
    "Turn",
    "Voiceprints",
    "join_sessions",
    "label",
    "speakers",
]
