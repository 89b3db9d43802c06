"""Observe the Speech SDK: a websocket server on 127.0.0.1 that logs every frame it receives.

It answers each turn minimally with voxflow's own USP codec (turn.start, one hypothesis, then at
the end of the audio one speech.phrase saying --text, EndOfDictation covering the audio,
speech.endDetected, turn.end), so it also checks that the SDK accepts what the codec builds.
Point the SDK at it with ``SpeechConfig(host="ws://127.0.0.1:PORT")``:

    .venv/bin/python scripts/usp_capture.py --port 8765 --save /tmp/frames --text "Hello."
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve

from voxflow.errors import ProtocolError
from voxflow.server.usp import (
    Audio,
    AudioEnd,
    AudioStart,
    Connection,
    RecognitionStatus,
    Replies,
    SpeechContext,
    Turn,
    parse_service_message,
)
from voxflow.transcript import Segment, Word


async def send(ws: ServerConnection, message: str) -> None:
    """Send a service message and log its path and body."""
    sent = parse_service_message(message)
    print(f">>> {sent.path} {json.dumps(sent.body)[:300]}")
    await ws.send(message)


class Capture:
    """Logs and saves frames; answers turns with --text."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.count = 0
        self.answered: set[str] = set()
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)

    def save(self, message: str | bytes, path: str) -> None:
        self.count += 1
        if self.args.save:
            raw = message.encode() if isinstance(message, str) else message
            kind = "txt" if isinstance(message, str) else "bin"
            (self.args.save / f"{self.count:04d}-{path}.{kind}").write_bytes(raw)

    async def handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        print(f"=== connect {request.path}")
        for name, value in request.headers.raw_items():
            print(f"    {name}: {value[:100]}")
        conn = Connection(request.path)
        async for message in ws:
            try:
                events = conn.receive(message)
            except ProtocolError as exc:
                print(f"!!! {exc}: {message[:200]!r}")
                self.save(message, "error")
                continue
            self.save(message, getattr(events[0], "path", type(events[0]).__name__))
            for event in events:
                await self.answer(ws, conn, event)
        print(f"=== closed {ws.close_code} {ws.close_reason}")

    async def answer(self, ws: ServerConnection, conn: Connection, event: object) -> None:
        if isinstance(event, Audio):
            turn = conn.turns[event.request_id]
            if event.offset == 0:
                print(f"--- audio {len(event.data)} bytes in the first frame")
            half_second = turn.format.bytes_per_second // 2 if turn.format else 0
            if event.offset < half_second <= turn.audio_bytes:  # one hypothesis at 0.5 s
                replies = Replies(turn.request_id, turn.settings.offset_base)
                first_word = self.args.text.split()[0]
                hypothesis = replies.hypothesis(
                    first_word, replies.base, turn.audio_end, language=self.language(turn)
                )
                await send(ws, hypothesis)
            if self.args.turn_seconds and turn.audio_seconds >= self.args.turn_seconds:
                await self.end_turn(ws, turn)  # the SDK goes on in a continuation turn
            return
        print(f"--- {event}"[:2000])
        if isinstance(event, SpeechContext):
            turn = conn.turns[event.request_id]
            replies = Replies(turn.request_id, turn.settings.offset_base)
            await send(ws, replies.turn_start())
            await send(ws, replies.start_detected(turn.settings.offset_base))
        elif isinstance(event, AudioStart):
            print(f"    settings {conn.turns[event.request_id].settings}")
        elif isinstance(event, AudioEnd):
            await self.end_turn(ws, conn.turns[event.request_id])

    async def end_turn(self, ws: ServerConnection, turn: Turn) -> None:
        if turn.request_id not in self.answered:
            self.answered.add(turn.request_id)
            for message in self.final(turn):
                await send(ws, message)

    def language(self, turn: Turn) -> str | None:
        """The locale to report: --lid, else the first the client asked to detect."""
        return self.args.lid or next(iter(turn.settings.languages), None)

    def final(self, turn: Turn) -> list[str]:
        """The messages that end a turn: the phrase, then the whole audio acknowledged."""
        start, end = turn.settings.offset_base, turn.audio_end
        words = self.args.text.split()
        step = (end - start) / max(1, len(words))
        segment = Segment(
            start=start,
            end=end,
            text=self.args.text,
            language=self.language(turn),
            words=tuple(
                Word(start + i * step, start + (i + 1) * step, w, 0.9) for i, w in enumerate(words)
            ),
        )
        replies = Replies(turn.request_id, start)
        settings = turn.settings
        return [
            replies.segment(
                segment,
                detailed=settings.detailed,
                word_timings=settings.word_timings,
                word_confidence=settings.word_confidence,
            ),
            replies.status(RecognitionStatus.END_OF_DICTATION, end, end),
            replies.end_detected(end),
            replies.turn_end(),
        ]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--save", type=Path, help="directory for every raw frame received")
    parser.add_argument("--text", default="Hello from voxflow.", help="what to answer")
    parser.add_argument("--lid", help="locale to report as PrimaryLanguage")
    parser.add_argument("--turn-seconds", type=float, help="end each turn after this much audio")
    args = parser.parse_args()
    capture = Capture(args)
    async with serve(capture.handle, "127.0.0.1", args.port, subprotocols=["USP"], max_size=None):
        print(f"listening on ws://127.0.0.1:{args.port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
