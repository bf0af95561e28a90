"""engine/opening: what `tutor open` does before the dialogue, through real files and SQLite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tutor.engine.notices import NoticeKind
from tutor.engine.opening import Choice, open_for_reader
from tutor.errors import TutorError

from conftest import EXPLAINERS

OFFLINE = Choice(offline=True)


def kinds(opened) -> list[NoticeKind]:
    return [n.kind for n in opened.notices]


def test_a_second_open_resumes_and_says_so_by_kind(tmp_path):
    db = tmp_path / "t.db"
    with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), db, OFFLINE) as first:
        sid = first.session.id
        assert not first.session.resumed and NoticeKind.RESUMED not in kinds(first)
    with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), db, OFFLINE) as again:
        assert again.session.id == sid and kinds(again) == [NoticeKind.RESUMED]


def test_a_changed_file_is_a_changed_notice(tmp_path):
    doc = tmp_path / "x.md"
    shutil.copy(EXPLAINERS / "sqlite-wal.md", doc)
    db = tmp_path / "t.db"
    with open_for_reader(str(doc), db, OFFLINE):
        pass
    doc.write_text(doc.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    with open_for_reader(str(doc), db, OFFLINE) as again:
        changed = [n for n in again.notices if n.kind is NoticeKind.CHANGED]
        assert len(changed) == 1 and changed[0].text.startswith(f"{doc} changed since")


def test_no_key_is_a_setup_notice(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), tmp_path / "t.db", Choice(model="x")) as opened:
        assert opened.session.mode == "offline"
        (note,) = opened.notices
        assert note.kind is NoticeKind.SETUP and "No ANTHROPIC_API_KEY" in note.text and "--model is ignored" in note.text


def test_a_session_open_in_another_process_is_refused_and_leaves_nothing_open(tmp_path):
    db = tmp_path / "t.db"
    with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), db, OFFLINE) as first:
        sid = first.session.id
    # POSIX record locks belong to a process: the other tutor is another process.
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), sid], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = open_files(db)
        with pytest.raises(TutorError, match="is open in another tutor") as err:
            open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), db, OFFLINE)
        assert err.value.hint and "--new" in err.value.hint
        assert open_files(db) == before  # the refused open closed its store
        with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), db, Choice(offline=True, new=True)) as other:
            assert other.session.id != sid  # a separate session is not blocked
    finally:
        holder.communicate("")
    with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), db, Choice(offline=True, resume=sid[:8])) as later:
        assert later.session.id == sid  # the lock went with the process


def open_files(db) -> list[str]:
    """This process's open descriptors on the database and its -wal/-shm files."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("no /proc/self/fd here")
    out = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(db)):
            out.append(target)
    return sorted(out)


def test_a_local_server_gets_its_longer_limits_and_the_readers_own_win(tmp_path, monkeypatch):
    from tutor.engine.claude import LOCAL_LIMITS

    from fake_api import FakeAPI

    for env in ("TUTOR_FIRST_TOKEN_TIMEOUT", "TUTOR_REPLY_TIMEOUT"):
        monkeypatch.delenv(env, raising=False)
    with FakeAPI(flavor="local") as api:
        with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), tmp_path / "t.db", Choice(base_url=api.url + " ")) as opened:
            b = opened.session.backend
            assert b is not None and b.limits == LOCAL_LIMITS and b.timeout == LOCAL_LIMITS.first_token + 5
        with open_for_reader(str(EXPLAINERS / "sqlite-wal.md"), tmp_path / "t.db",
                             Choice(base_url=api.url, first_token=30.0, new=True)) as opened:
            b = opened.session.backend
            assert b is not None and b.limits.first_token == 30.0 and b.limits.reply == LOCAL_LIMITS.reply
    # Anthropic's own URL is not a local server, spaces or not
    assert Choice(base_url=" https://api.anthropic.com ").limits().first_token == 90.0
    assert Choice(base_url="http://127.0.0.1:11434", offline=True).limits().first_token == 90.0


HOLD = """
import sys
from tutor.store.lock import SessionLock
lock = SessionLock(sys.argv[1], sys.argv[2])
assert lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""
