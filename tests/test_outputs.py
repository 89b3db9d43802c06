"""Output names that cannot escape the output directory, and atomic, never-clobbering writes."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow import outputs
from voxflow.errors import OutputError
from voxflow.outputs import (
    MAX_STEM,
    DiskFullError,
    publish,
    remove_temps,
    safe_stem,
    stem_key,
    temp_path,
    unique_stems,
    write_atomic,
)

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = set('/\\:*?"<>|') | {chr(c) for c in range(32)} | {"\x7f", "\u2028", "\u2029"}


def assert_safe(stem: str) -> None:
    assert stem and not stem.startswith(".") and stem == stem.strip()
    assert not FORBIDDEN & set(stem), stem
    assert len(stem.encode("utf-8")) <= MAX_STEM  # encodable: no lone surrogates either
    assert stem.split(".")[0].casefold() not in {"con", "nul", "aux", "prn", "com1", "lpt1"}


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("talk.mp3", "talk"),
        ("../../etc/passwd.wav", "passwd"),
        ("/abs/path/to/x.flac", "x"),
        ("C:\\Users\\me\\memo.m4a", "memo"),
        ("dir/", "dir"),
        ("..", "audio"),
        ("...", "audio"),
        (".hidden.wav", "hidden"),
        ("a.b.c.wav", "a.b.c"),
        ("CON.wav", "_CON"),
        ("nul", "_nul"),
        ("what?:<x>|*.wav", "what_x_"),
        ("tab\there\nnewline.wav", "tab_here_newline"),
        ("\u202egnp.exe", "gnp"),  # a right-to-left override that disguises the name
        ("trailing. . .wav", "trailing"),
        ("bad\udcff\udcfebytes.wav", "bad_bytes"),  # undecodable bytes from os.listdir
        ("-", "-"),
    ],
)
def test_safe_stem_cases(name: str, stem: str) -> None:
    assert safe_stem(name) == stem
    assert_safe(safe_stem(name))


def test_long_names_are_cut_at_a_character_boundary() -> None:
    stem = safe_stem("é" * 300 + ".wav")
    assert stem == "é" * (MAX_STEM // 2)
    stem = safe_stem("a" + "😀" * 100 + ".wav")  # 4-byte characters: cut below the limit
    assert len(stem.encode()) <= MAX_STEM and stem.endswith("😀")


def test_unicode_is_normalised_and_compared_as_file_systems_do() -> None:
    nfd = unicodedata.normalize("NFD", "café.wav")
    assert safe_stem(nfd) == "café" == unicodedata.normalize("NFC", safe_stem(nfd))
    assert stem_key("Straße") == stem_key("STRASSE") == stem_key("strasse")
    assert stem_key(unicodedata.normalize("NFD", "Ÿ")) == stem_key("ÿ")


def test_unique_stems_separate_case_twins_and_same_stems_in_other_folders() -> None:
    names = ["a/talk.wav", "b/talk.mp3", "Talk.flac", "talk-2.wav", "c/TALK.wav"]
    stems = unique_stems(names)
    assert stems == ["talk", "talk-2", "Talk-3", "talk-2-2", "TALK-4"]
    assert len({stem_key(s) for s in stems}) == len(names)
    assert unique_stems(["talk.wav"], taken={stem_key("talk")}) == ["talk-2"]


pieces = st.characters(codec="utf-8") | st.sampled_from(["/", "..", ".", "\\", "\udcff", "é"])
names_strategy = st.lists(st.lists(pieces, max_size=200).map("".join), min_size=1, max_size=6)


@settings(max_examples=150, deadline=None)
@given(names_strategy)
def test_any_names_give_distinct_stems_that_stay_in_the_directory(
    tmp_path_factory: pytest.TempPathFactory, names: list[str]
) -> None:
    out = tmp_path_factory.mktemp("out")
    stems = unique_stems(names)
    assert len({stem_key(s) for s in stems}) == len(stems)
    for stem in stems:
        assert_safe(stem)
        target = out / f"{stem}.json"
        assert target.resolve().parent == out.resolve()
        write_atomic(target, "{}\n")  # the file system takes the name, with room to spare
        assert len(temp_path(target).name.encode()) <= 255
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{s}.json" for s in stems)


# --- atomic writes ---------------------------------------------------------------------------


def test_write_atomic_writes_text_and_bytes_and_leaves_no_temporary(tmp_path: Path) -> None:
    write_atomic(tmp_path / "deep" / "a.txt", "héllo\n")
    write_atomic(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "deep" / "a.txt").read_bytes() == "héllo\n".encode()
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "b.bin", "deep"]


@pytest.mark.skipif(os.name != "posix", reason="file modes and umask are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_outputs_get_the_mode_the_umask_gives_new_files(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "out.txt", "x")
        (tmp_path / "plain.txt").write_text("x")  # what any program would create
    finally:
        os.umask(old)
    mode = (tmp_path / "out.txt").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask == (tmp_path / "plain.txt").stat().st_mode & 0o777


def test_existing_files_are_kept_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("mine\n")
    with pytest.raises(OutputError) as info:
        write_atomic(target, "new\n")
    assert str(info.value) == f"{target}: already exists (use --overwrite to replace it)"
    assert target.read_text() == "mine\n"
    write_atomic(target, "new\n", overwrite=True)
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_file_that_appears_while_writing_is_not_replaced(tmp_path: Path) -> None:
    target, tmp = tmp_path / "a.txt", tmp_path / ".a.txt.0123abcd.voxflow-part"
    tmp.write_text("ours\n")
    target.write_text("someone else's\n")  # created after the existence check
    with pytest.raises(OutputError, match="appeared while writing; left untouched"):
        publish(tmp, target)
    assert target.read_text() == "someone else's\n"


def test_only_the_named_temporaries_are_removed(tmp_path: Path) -> None:
    stale = [".a.txt.0123abcd.voxflow-part", ".x y.json.deadbeef.voxflow-part"]
    kept = ["a.txt", ".a.txt.part", ".b.txt.0123abcd.voxflow-part", ".notes"]  # not named
    for name in stale + kept:
        (tmp_path / name).write_text("x")
    (tmp_path / ".dir.0123abcd.voxflow-part").mkdir()  # not a file: left alone
    named = [*stale, ".dir.0123abcd.voxflow-part", ".gone.txt.00000000.voxflow-part"]
    removed = remove_temps(tmp_path, set(named))
    assert sorted(p.name for p in removed) == sorted(stale)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([*kept, ".dir.0123abcd.voxflow-part"])


def test_unwritable_output_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError) as info:
        write_atomic(blocker / "out" / "a.txt", "x")
    assert str(info.value) == f"{blocker / 'out' / 'a.txt'}: cannot write here: Not a directory"


def test_disk_full_mid_write_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mock, as the last resort: no file system can be made to fill up at an exact byte
    in-process (tests/test_jobs.py fills a real tmpfs where one can be mounted)."""
    calls = []

    def full(fd: int, data: memoryview) -> int:
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data[:10])  # a short write first, as a nearly full disk does

    monkeypatch.setattr(outputs.os, "write", full)
    target = tmp_path / "a.json"
    with pytest.raises(DiskFullError) as info:
        write_atomic(target, "x" * 100)
    assert str(info.value) == f"disk full while writing {target}"
    assert list(tmp_path.iterdir()) == []


FSIZE_SCRIPT = """
import resource, signal, sys
from pathlib import Path
from voxflow.outputs import write_atomic
from voxflow.errors import OutputError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
try:
    write_atomic(Path(sys.argv[1]), "x" * 100_000)
except OutputError as exc:
    print(exc)
"""


@pytest.mark.skipif(os.name != "posix", reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_file_size_limit_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "big.txt"
    done = subprocess.run([sys.executable, "-c", FSIZE_SCRIPT, str(target)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.stderr == ""
    assert done.stdout == f"{target}: too large for the file system or the file size limit\n"
    assert list(tmp_path.iterdir()) == []


HARD_EXIT_SCRIPT = """
import os, signal, sys, time, asyncio
from pathlib import Path
from voxflow.jobs.signals import Interrupts
from voxflow.outputs import write_atomic
out = Path(sys.argv[1])
payload = b"0123456789abcdef" * (1 << 18)  # 4 MiB: a write takes a while
async def main():
    with Interrupts(asyncio.get_running_loop(), lambda sig: None):  # a stop that takes forever
        print("ready", flush=True)
        for i in range(10_000):
            write_atomic(out / f"{i}.bin", payload)
asyncio.run(main())
"""


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_a_second_interrupt_exits_at_once_leaving_only_complete_files(tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-c", HARD_EXIT_SCRIPT, str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)  # the first: handed to the loop, which ignores it here
    time.sleep(0.3)
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert b"interrupted again" in err
    files = list(tmp_path.iterdir())
    assert files and all(f.name.endswith(".bin") for f in files)  # no temporary left
    assert all(f.stat().st_size == 4 << 20 for f in files)  # every file whole
