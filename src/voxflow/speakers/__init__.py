"""Speaker diarization: who spoke when, from speaker embeddings of the speech as it passes.

``DiarizeOptions`` says how many speakers to look for; ``SpeakerTracker`` collects embeddings
of each clip and finds the turns; ``label`` puts them on a transcript's segments and words.
"""

from voxflow.speakers.assign import label, speakers
from voxflow.speakers.diarize import DiarizeOptions, SpeakerTracker, Turn

__all__ = ["DiarizeOptions", "SpeakerTracker", "Turn", "label", "speakers"]
