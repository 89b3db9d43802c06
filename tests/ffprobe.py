"""A stand-in for the ``ffprobe`` program, for pydub, made from the imageio-ffmpeg wheel's ffmpeg.

pydub reads compressed files through ``ffmpeg`` after asking ``ffprobe -of json -v info
-show_format -show_streams INPUT`` for each stream's codec (from the JSON) and sample format
(from the stream lines ffprobe logs). No well-kept wheel ships ffprobe, but ``ffmpeg -i INPUT``
logs the same stream lines (both print FFmpeg's ``av_dump_format``): this passes them on and
prints the JSON fields pydub reads, as ffprobe sets them. pydub's own code does the rest.
conftest.py puts this, as ``ffprobe``, and the wheel's ffmpeg, as ``ffmpeg``, on the PATH.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import imageio_ffmpeg

# "  Stream #0:1[0x2](eng): Audio: mp3 (mp3float), 44100 Hz, mono, fltp, 64 kb/s"
STREAM = re.compile(r"^\s*Stream #0[:.](\d+)\S*: (\w+): (\w+)", re.MULTILINE)


def bits_per_sample(codec: str) -> int:
    """ffprobe's ``bits_per_sample``: FFmpeg's fixed sample size of a PCM codec, else 0."""
    if codec in ("pcm_alaw", "pcm_mulaw"):
        return 8
    sized = re.match(r"pcm_[suf](\d+)", codec)
    return int(sized[1]) if sized else 0


def probe(args: list[str]) -> tuple[dict[str, Any], str]:
    """ffprobe's JSON (the fields pydub reads) and log for pydub's arguments: the options
    after ``-show_streams`` are input options (``-read_ahead_limit`` for stdin), then the input."""
    *options, source = args[args.index("-show_streams") + 1 :]
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", *options, "-i", source]
    log = subprocess.run(command, stderr=subprocess.PIPE, text=True, check=False).stderr
    streams = [
        {
            "index": int(index),
            "codec_type": kind.lower(),
            "codec_name": codec,
            "bits_per_sample": bits_per_sample(codec),
        }
        for index, kind, codec in STREAM.findall(log)
    ]
    return ({"streams": streams, "format": {}} if streams else {}), log


if __name__ == "__main__":
    info, log = probe(sys.argv[1:])
    sys.stderr.write(log)
    print(json.dumps(info))
