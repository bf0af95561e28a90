"""What readers' tutors flagged, flowing back to the author: the report and bundles.

``tutor feedback FILE`` groups the model's ``<feedback>`` tags and readers' own notes by
concept section (newest first), shows the explainer version (content hash) each was
given against, flags items whose section has been edited since, and adds a "stuck" line
per concept (sessions that marked it shaky or needed it explained twice).

A *bundle* (JSON Lines) is what a reader sends the author: feedback and anonymous
per-concept stats, and transcripts only with ``--with-transcripts``. Every feedback row
has a stable ``uid`` (migration m003_authors), so importing a bundle twice adds nothing.
Sessions are named in a bundle only by ``session_key`` -- a hash of the session id, which
tells the author "these came from the same session" and nothing else.

Tables used (docs/database.md, docs/authors.md): feedback (uid, session_key),
explainer_sections, concept_state_log, imported_stats, plus sessions/messages for
imported transcripts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError

from tutor.errors import TutorError
from tutor.text import plural, strip_controls, utf8_text

BUNDLE_FORMAT: Final = "tutor-feedback-bundle"
BUNDLE_VERSION = 1
IMPORTED_MODE = "imported"
MAX_BUNDLE_BYTES = 200 * 1024 * 1024

SectionStatus = Literal["current", "unchanged", "changed", "removed", "unknown", "general"]


def session_key(session_id: str) -> str:
    """An anonymous, stable name for a session: same session -> same key, nothing else."""
    return hashlib.sha256(f"tutor-session:{session_id}".encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- report models


class FeedbackItem(BaseModel):
    uid: str
    concept_id: str | None
    text: str
    source: Literal["model", "reader", "rules"]  # rules: the tutor on its own instructions
    created: str
    explainer_hash: str
    version: str  # short content hash
    section_status: SectionStatus
    session: str | None = None  # short session id (local) or session key (imported): the newest one
    imported: bool = False
    count: int = 1  # times this note was given, over every session (a session stores a repeat once, m006)
    sessions: int = 1  # sessions (or imported session keys) that gave it

    @property
    def changed_since(self) -> bool:
        return self.section_status in ("changed", "removed")


class StuckStats(BaseModel):
    sessions: int  # sessions of this explainer that reached the concept
    shaky: int  # sessions that marked it shaky at some point
    explained_twice: int  # sessions that needed it explained two times or more


class ConceptGroup(BaseModel):
    concept_id: str | None
    title: str
    in_current_version: bool = True
    count: int = 0
    model: int = 0
    reader: int = 0
    changed_since: int = 0
    stuck: StuckStats | None = None
    items: list[FeedbackItem] = Field(default_factory=list)  # newest first


class VersionInfo(BaseModel):
    hash: str
    current: bool
    items: int


class FeedbackReport(BaseModel):
    path: str
    title: str
    content_hash: str
    total: int
    model: int
    reader: int
    changed_since: int
    sessions: int
    versions: list[VersionInfo]
    groups: list[ConceptGroup]


# --------------------------------------------------------------------------- queries


def _hashes_for(store, explainer) -> list[str]:
    from tutor.store import normalise_path

    p = normalise_path(explainer.path)
    rows = store._query(
        "SELECT hash FROM explainers WHERE path = ? UNION SELECT explainer_hash FROM sessions WHERE explainer_path = ?",
        (p, p),
    )
    hashes = {r["hash"] for r in rows}
    if explainer.content_hash:
        hashes.add(explainer.content_hash)
    return sorted(hashes)


def _feedback_rows(store, hashes: list[str]) -> list[dict[str, Any]]:
    if not hashes:
        return []
    q = ",".join("?" * len(hashes))
    return store._query(
        f"SELECT f.*, s.mode AS session_mode FROM feedback f LEFT JOIN sessions s ON s.id = f.session_id"
        f" WHERE f.explainer_hash IN ({q}) ORDER BY f.created DESC, f.id DESC",
        hashes,
    )


def _section_hashes(store, hashes: list[str]) -> dict[tuple[str, str], str]:
    if not hashes:
        return {}
    q = ",".join("?" * len(hashes))
    rows = store._query(
        f"SELECT explainer_hash, concept_id, section_hash FROM explainer_sections WHERE explainer_hash IN ({q})", hashes
    )
    return {(r["explainer_hash"], r["concept_id"]): r["section_hash"] for r in rows}


def concept_stats(store, hashes: list[str]) -> tuple[dict[str, StuckStats], int]:
    """Per concept: sessions that reached it, marked it shaky, or had it explained twice.

    Local sessions come from the concept-state log; imported bundles from imported_stats.
    Returns (stats per concept, number of distinct sessions overall).
    """
    if not hashes:
        return {}, 0
    q = ",".join("?" * len(hashes))
    per: dict[str, dict[str, set[str]]] = {}

    def bucket(cid: str) -> dict[str, set[str]]:
        return per.setdefault(cid, {"seen": set(), "shaky": set(), "twice": set()})

    all_sessions: set[str] = set()
    for r in store._query(
        f"SELECT id FROM sessions WHERE explainer_hash IN ({q}) AND mode != ?", [*hashes, IMPORTED_MODE]
    ):
        all_sessions.add(session_key(r["id"]))
    rows = store._query(
        f"SELECT l.session_id, l.concept_id, sum(l.state = 'shaky') AS shaky, sum(l.state = 'explained') AS explained"
        f" FROM concept_state_log l JOIN sessions s ON s.id = l.session_id"
        f" WHERE s.explainer_hash IN ({q}) AND s.mode != ? GROUP BY l.session_id, l.concept_id",
        [*hashes, IMPORTED_MODE],
    )
    for r in rows:
        key = session_key(r["session_id"])
        b = bucket(r["concept_id"])
        b["seen"].add(key)
        if r["shaky"]:
            b["shaky"].add(key)
        if (r["explained"] or 0) >= 2:
            b["twice"].add(key)
    for r in store._query(f"SELECT * FROM imported_stats WHERE explainer_hash IN ({q})", hashes):
        all_sessions.add(r["session_key"])
        b = bucket(r["concept_id"])
        b["seen"].add(r["session_key"])
        if r["shaky"]:
            b["shaky"].add(r["session_key"])
        if r["explained"] >= 2:
            b["twice"].add(r["session_key"])
    stats = {
        cid: StuckStats(sessions=len(b["seen"]), shaky=len(b["shaky"]), explained_twice=len(b["twice"]))
        for cid, b in per.items()
    }
    return stats, len(all_sessions)


class _Unloadable(BaseModel):
    """Stands in for an explainer that does not load right now (mid-edit, or deleted):
    the report still lists its feedback, by the concept ids recorded with each item."""

    path: str
    title: str
    content_hash: str = ""
    concepts: list = Field(default_factory=list)


def explainer_for_report(store, file: str):
    """``(explainer, warning)``: the loaded file, or a stand-in when it does not load but the
    database knows the path, so an author can read feedback while the file is broken."""
    from tutor.errors import ExplainerError
    from tutor.explainer import load
    from tutor.store import normalise_path

    try:
        return load(file), None
    except ExplainerError as e:
        row = store._one(
            "SELECT title FROM explainers WHERE path = ? ORDER BY last_seen DESC LIMIT 1", (normalise_path(file),)
        )
        if row is None:
            raise
        first = str(e.problems[0]) if e.problems else str(e)
        warning = f"warning: {first}\nshowing the feedback without comparing sections to the current file"
        return _Unloadable(path=file, title=row["title"]), warning


def build_report(store, explainer, source: str | None = None) -> FeedbackReport:
    """The feedback on every version of ``explainer``'s file, grouped by its current sections
    (only notes from ``source``: model, reader or rules, when given)."""
    from tutor.store import section_hash
    from tutor.text import note_key

    hashes = _hashes_for(store, explainer)
    rows = [r for r in _feedback_rows(store, hashes) if source is None or r["source"] == source]
    old_sections = _section_hashes(store, hashes)
    current = {c.id: section_hash(c.section.text) for c in explainer.concepts}
    stats, n_sessions = concept_stats(store, hashes)

    groups: dict[str | None, ConceptGroup] = {}
    for c in explainer.concepts:
        groups[c.id] = ConceptGroup(concept_id=c.id, title=c.title)
    versions: dict[str, int] = {}
    items: list[FeedbackItem] = []
    # Identical notes (text.note_key) on one concept from one source are one item with a count,
    # whichever sessions gave them; an item on an edited section stays apart from current ones.
    same: dict[tuple[str | None, str, str, bool], tuple[FeedbackItem, set[str]]] = {}
    for r in rows:
        cid = r["concept_id"] or None
        h = r["explainer_hash"]
        if cid is None:
            status: SectionStatus = "general"
        elif not current:  # the file does not load: nothing to compare with
            status = "unknown"
        elif cid not in current:
            status = "removed"
        elif h == explainer.content_hash:
            status = "current"
        elif (h, cid) not in old_sections:
            status = "unknown"
        else:
            status = "unchanged" if old_sections[(h, cid)] == current[cid] else "changed"
        imported = r.get("session_mode") == IMPORTED_MODE or (r["session_id"] is None and bool(r.get("session_key")))
        sess = r.get("session_key") if r["session_id"] is None else r["session_id"]
        item = FeedbackItem(
            uid=r.get("uid") or f"local-{r['id']}",
            concept_id=cid,
            text=r["text"],
            source=r["source"] if r["source"] in ("model", "reader", "rules") else "model",
            created=r["created"],
            explainer_hash=h,
            version=h[:8],
            section_status=status,
            session=(sess or "")[:8] or None,
            imported=imported,
            count=max(1, int(r.get("count") or 1)),
        )
        key = (cid, item.source, note_key(item.text), item.changed_since)
        if key in same:  # rows come newest first: the newest wording and time stay
            seen, sessions = same[key]
            seen.count += item.count
            sessions.add(sess or f"row-{r['id']}")
            seen.sessions = len(sessions)
            continue
        same[key] = (item, {sess or f"row-{r['id']}"})
        items.append(item)
        versions[h] = versions.get(h, 0) + 1
        if cid not in groups:
            if cid is None:
                title = "General (no section)"
            else:
                title = f"{cid} (not in this version)" if current else cid
            groups[cid] = ConceptGroup(concept_id=cid, title=title, in_current_version=cid is None or not current)
        g = groups[cid]
        g.items.append(item)  # rows are newest first already
        g.count += 1
        g.model += item.source == "model"
        g.reader += item.source == "reader"
        g.changed_since += item.changed_since
    for cid, g in groups.items():
        if cid is not None and cid in stats and (stats[cid].shaky or stats[cid].explained_twice):
            g.stuck = stats[cid]
    ordered = [g for g in groups.values() if g.count or g.stuck]
    # Teaching order for current concepts, then removed ones, then general feedback.
    ordered.sort(key=lambda g: (0 if g.in_current_version and g.concept_id else 1 if g.concept_id else 2))
    version_list = [VersionInfo(hash=h, current=h == explainer.content_hash, items=n) for h, n in versions.items()]
    version_list.sort(key=lambda v: (not v.current, -v.items))
    return FeedbackReport(
        path=str(explainer.path),
        title=explainer.title,
        content_hash=explainer.content_hash,
        total=len(items),
        model=sum(i.source == "model" for i in items),
        reader=sum(i.source == "reader" for i in items),
        changed_since=sum(i.changed_since for i in items),
        sessions=n_sessions,
        versions=version_list,
        groups=ordered,
    )


# --------------------------------------------------------------------------- text rendering


def _when(created: str) -> str:
    return created[:16].replace("T", " ")


_STATUS_NOTE = {
    "changed": "SECTION CHANGED SINCE",
    "removed": "SECTION REMOVED SINCE",
    "unknown": "version not recorded",
}


def render_report(rep: FeedbackReport) -> str:
    """Plain text for the terminal. Feedback text is untrusted: control characters are dropped."""
    version = f"current version {rep.content_hash[:8]}" if rep.content_hash else "the file does not load now"
    out = [f"{strip_controls(rep.title)} ({strip_controls(rep.path)}, {version})"]
    if not rep.total and not any(g.stuck for g in rep.groups):
        out.append("No feedback yet. It appears here after readers use the tutor (or after `tutor feedback import`).")
        return "\n".join(out) + "\n"
    out.append(
        f"{plural(rep.total, 'item')}: {rep.model} from the tutor, {rep.reader} from readers"
        f"; {plural(rep.sessions, 'session')}"
        + (f"; {rep.changed_since} on sections changed since" if rep.changed_since else "")
    )
    if len(rep.versions) > 1 or (rep.versions and not rep.versions[0].current):
        vs = ", ".join(f"{v.hash[:8]}{' (current)' if v.current else ''} ({plural(v.items, 'item')})" for v in rep.versions)
        out.append(f"given against versions: {vs}")
    for g in rep.groups:
        out.append("")
        head = f"## {strip_controls(g.title)}"
        if g.concept_id and g.in_current_version:
            head += f" {{#{g.concept_id}}}"
        parts = [plural(g.count, 'item')]
        if g.count:
            parts.append(f"{g.model} tutor, {g.reader} reader")
        if g.changed_since:
            parts.append(f"{g.changed_since} on an older text")
        out.append(f"{head} -- {'; '.join(parts)}")
        if g.stuck:
            s = g.stuck
            bits = []
            if s.shaky:
                bits.append(f"{s.shaky} marked it shaky")
            if s.explained_twice:
                bits.append(f"{s.explained_twice} needed it explained twice")
            out.append(f"   stuck: {' and '.join(bits)} (of {plural(s.sessions, 'session')} that reached it)")
        for it in g.items:
            who = {"model": "tutor ", "rules": "tutor on its rules"}.get(it.source, "reader")
            flag = _STATUS_NOTE.get(it.section_status, "")
            meta = f"{_when(it.created)}  {who}  v{it.version}" + (f"  [{flag}]" if flag else "")
            if it.imported:
                meta += "  (imported)"
            if it.count > 1:
                meta += f"  ×{it.count}" + (f" in {it.sessions} sessions" if it.sessions > 1 else "")
            out.append(f" - {meta}")
            for line in strip_controls(it.text).strip().splitlines() or [""]:
                out.append(f"     {line}")
    return "\n".join(out) + "\n"


def overview(store) -> list[dict[str, Any]]:
    """Every explainer with feedback: path, title, counts, newest item (``tutor feedback`` without FILE)."""
    return store._query(
        "SELECT e.path, e.title, count(*) AS items, sum(f.source = 'model') AS model,"
        " sum(f.source = 'reader') AS reader, max(f.created) AS newest"
        " FROM feedback f JOIN explainers e ON e.hash = f.explainer_hash"
        " GROUP BY e.path ORDER BY newest DESC"
    )


def render_overview(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "No feedback yet.\n"
    out = ["Feedback per explainer (newest first); show one with `tutor feedback FILE`:"]
    for r in rows:
        out.append(
            f"  {r['items']:>4}  ({r['model']} tutor, {r['reader']} reader)  newest {_when(r['newest'])}  "
            f"{strip_controls(r['title'])}  {strip_controls(r['path'])}"
        )
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- bundles


class BundleHeader(BaseModel):
    type: Literal["header"] = "header"
    format: Literal["tutor-feedback-bundle"] = BUNDLE_FORMAT
    version: int = BUNDLE_VERSION
    created: str
    title: str
    file: str  # the explainer's file name (no folders: the reader's paths are theirs)
    with_transcripts: bool = False


class BundleSection(BaseModel):
    concept_id: str
    title: str = ""
    section_hash: str


class BundleExplainer(BaseModel):
    type: Literal["explainer"] = "explainer"
    hash: str = Field(pattern=r"^[0-9a-f]{16,128}$")
    title: str
    file: str
    sections: list[BundleSection] = Field(default_factory=list)


class BundleFeedback(BaseModel):
    type: Literal["feedback"] = "feedback"
    uid: str = Field(min_length=8, max_length=128)
    explainer_hash: str
    concept_id: str | None = None
    text: str
    source: Literal["model", "reader"]
    created: str
    session_key: str | None = None
    count: int = Field(1, ge=1, le=2**31)  # times given in that session (m006); absent in older bundles


class BundleStats(BaseModel):
    type: Literal["stats"] = "stats"
    session_key: str = Field(min_length=8, max_length=128)
    explainer_hash: str
    concept_id: str
    shaky: bool = False
    explained: int = Field(0, ge=0, le=2**31)  # SQLite INTEGER is 64-bit: 2**63 overflowed (16.5)


class BundleMessage(BaseModel):
    role: Literal["reader", "tutor", "system"]
    text: str
    created: str


class BundleTranscript(BaseModel):
    type: Literal["transcript"] = "transcript"
    session_key: str = Field(pattern=r"^[0-9a-f]{32}$")
    explainer_hash: str
    started: str
    messages: list[BundleMessage]


_LINE_TYPES: dict[str, type[BaseModel]] = {
    "header": BundleHeader,
    "explainer": BundleExplainer,
    "feedback": BundleFeedback,
    "stats": BundleStats,
    "transcript": BundleTranscript,
}


class ExportResult(BaseModel):
    path: str
    feedback: int
    stats: int
    transcripts: int
    versions: int


class Bundle(BaseModel):
    """A bundle built but not yet written: what the preview shows is what gets written."""

    lines: list[BaseModel]
    feedback: int
    stats: int
    transcripts: int
    versions: int
    # uid of a model note -> the reader's words it repeats (a hostile explainer can tell the
    # model to copy what the reader writes into <feedback>; 16.1)
    quoting: dict[str, str] = Field(default_factory=dict)
    own_notes: list[str] = Field(default_factory=list)  # uids of the reader's own /feedback notes

    def data(self) -> str:
        return "".join(line.model_dump_json() + "\n" for line in self.lines)


def bundle_target(explainer, output: str | Path, *, force: bool = False) -> str:
    """Where ``output`` writes (a folder means the usual name in it), checked before the
    reader is asked anything, so "already exists" never comes after a yes."""
    if str(output) == "-":
        return "-"
    out = Path(output)
    if out.is_dir():  # -o bundles/ : the usual name, in that folder
        out = out / default_bundle_name(explainer)
    elif str(output).endswith(("/", os.sep)):
        raise TutorError(f"{output}: no such folder", hint="create it first, or give a file name with -o")
    if out.exists() and not force:
        raise TutorError(f"{out}: already exists", hint="use --force to overwrite it, or choose another -o")
    if not out.parent.exists():
        raise TutorError(f"{out.parent}: no such folder")
    return str(out)


def export_bundle(store, explainer, output: str | Path, *, with_transcripts: bool = False, force: bool = False) -> ExportResult:
    """Write the bundle for every version of ``explainer`` in this database."""
    target = bundle_target(explainer, output, force=force)
    return write_bundle(build_bundle(store, explainer, with_transcripts=with_transcripts), target)


def write_bundle(bundle: Bundle, target: str) -> ExportResult:
    """Write an already built bundle to ``target`` (from ``bundle_target``; "-" is stdout)."""
    data = bundle.data()
    if target == "-":
        import sys

        sys.stdout.write(data)
        sys.stdout.flush()
    else:
        from tutor.files import atomic_write

        atomic_write(Path(target), data)
    return ExportResult(path=target, feedback=bundle.feedback, stats=bundle.stats, transcripts=bundle.transcripts, versions=bundle.versions)


_WORD_RE = re.compile(r"\w+")
QUOTE_WORDS = 4  # this many of the reader's words in a row, in a model note, count as a quote


def quoted_words(note: str, reader_texts: list[str]) -> str | None:
    """The first run of the reader's words that ``note`` repeats, or None.

    Runs of QUOTE_WORDS words (case and punctuation ignored); a reader message shorter than
    that counts when the note holds all of it and it has two words and 10 letters (a lone
    "yes" or a concept name is not a quote). Linear in the text sizes, so a long session
    costs nothing noticeable."""
    words = [w.casefold() for w in _WORD_RE.findall(note)]
    if not words:
        return None
    grams = {tuple(words[i : i + QUOTE_WORDS]) for i in range(len(words) - QUOTE_WORDS + 1)}
    joined = " " + " ".join(words) + " "
    for text in reader_texts:
        rw = [w.casefold() for w in _WORD_RE.findall(text)]
        if len(rw) < QUOTE_WORDS:
            if len(rw) >= 2 and len("".join(rw)) >= 10 and f" {' '.join(rw)} " in joined:
                return " ".join(rw)
            continue
        for i in range(len(rw) - QUOTE_WORDS + 1):
            if tuple(rw[i : i + QUOTE_WORDS]) in grams:
                j = i + QUOTE_WORDS
                while j < len(rw) and tuple(rw[j + 1 - QUOTE_WORDS : j + 1]) in grams:
                    j += 1
                return " ".join(rw[i:j])
    return None


def build_bundle(store, explainer, *, with_transcripts: bool = False) -> Bundle:
    """Every line of the bundle for every version of ``explainer`` in this database."""
    from tutor.store import now_iso

    hashes = _hashes_for(store, explainer)
    q = ",".join("?" * len(hashes))
    lines: list[BaseModel] = [
        BundleHeader(created=now_iso(), title=explainer.title, file=Path(explainer.path).name, with_transcripts=with_transcripts)
    ]
    sections = store._query(
        f"SELECT explainer_hash, concept_id, title, section_hash FROM explainer_sections WHERE explainer_hash IN ({q})"
        " ORDER BY explainer_hash, rowid",
        hashes,
    )
    from tutor.store import section_hash

    by_hash: dict[str, list[BundleSection]] = {}
    for r in sections:
        by_hash.setdefault(r["explainer_hash"], []).append(
            BundleSection(concept_id=r["concept_id"], title=r["title"], section_hash=r["section_hash"])
        )
    by_hash.setdefault(explainer.content_hash, [])
    if not by_hash[explainer.content_hash]:
        by_hash[explainer.content_hash] = [
            BundleSection(concept_id=c.id, title=c.title, section_hash=section_hash(c.section.text)) for c in explainer.concepts
        ]
    titles = {r["hash"]: r["title"] for r in store._query(f"SELECT hash, title FROM explainers WHERE hash IN ({q})", hashes)}
    for h in hashes:
        lines.append(
            BundleExplainer(hash=h, title=titles.get(h, explainer.title), file=Path(explainer.path).name, sections=by_hash.get(h, []))
        )
    rows = store._query(f"SELECT * FROM feedback WHERE explainer_hash IN ({q}) ORDER BY created, id", hashes)
    n_fb = 0
    quoting: dict[str, str] = {}
    own: list[str] = []
    reader_words: dict[str, list[str]] = {}
    for r in rows:
        if r["source"] == "rules":  # about the tutor's instructions, not for the explainer's author
            continue
        key = r.get("session_key") or (session_key(r["session_id"]) if r["session_id"] else None)
        item = BundleFeedback(
            uid=r["uid"] or hashlib.sha256(f"{r['id']}:{r['created']}:{r['text']}".encode()).hexdigest()[:32],
            explainer_hash=r["explainer_hash"],
            concept_id=r["concept_id"],
            text=r["text"],
            source=r["source"] if r["source"] in ("model", "reader") else "model",
            created=r["created"],
            session_key=key,
            count=max(1, int(r.get("count") or 1)),
        )
        if r["session_id"] and item.source == "reader":
            own.append(item.uid)
        elif r["session_id"]:
            if r["session_id"] not in reader_words:
                reader_words[r["session_id"]] = [
                    m["text"] for m in store._query(
                        "SELECT text FROM messages WHERE session_id = ? AND role = 'reader' AND (raw IS NULL OR raw NOT LIKE '/%')",
                        (r["session_id"],),
                    )
                ]
            hit = quoted_words(item.text, reader_words[r["session_id"]])
            if hit:
                quoting[item.uid] = hit
        lines.append(item)
        n_fb += 1
    n_stats = 0
    for r in store._query(
        f"SELECT l.session_id, s.explainer_hash, l.concept_id, max(l.state = 'shaky') AS shaky,"
        f" sum(l.state = 'explained') AS explained FROM concept_state_log l JOIN sessions s ON s.id = l.session_id"
        f" WHERE s.explainer_hash IN ({q}) AND s.mode != ? GROUP BY l.session_id, l.concept_id ORDER BY l.session_id, min(l.id)",
        [*hashes, IMPORTED_MODE],
    ):
        lines.append(
            BundleStats(
                session_key=session_key(r["session_id"]),
                explainer_hash=r["explainer_hash"],
                concept_id=r["concept_id"],
                shaky=bool(r["shaky"]),
                explained=int(r["explained"] or 0),
            )
        )
        n_stats += 1
    for r in store._query(f"SELECT * FROM imported_stats WHERE explainer_hash IN ({q})", hashes):
        lines.append(
            BundleStats(
                session_key=r["session_key"], explainer_hash=r["explainer_hash"], concept_id=r["concept_id"],
                shaky=bool(r["shaky"]), explained=r["explained"],
            )
        )
        n_stats += 1
    n_tr = 0
    if with_transcripts:
        for s in store._query(f"SELECT * FROM sessions WHERE explainer_hash IN ({q}) ORDER BY started", hashes):
            msgs = store._query("SELECT role, text, created FROM messages WHERE session_id = ? ORDER BY seq", (s["id"],))
            key = s["id"] if s["mode"] == IMPORTED_MODE else session_key(s["id"])
            lines.append(
                BundleTranscript(
                    session_key=key,
                    explainer_hash=s["explainer_hash"],
                    started=s["started"],
                    messages=[BundleMessage(**m) for m in msgs if m["role"] in ("reader", "tutor", "system")],
                )
            )
            n_tr += 1
    return Bundle(lines=lines, feedback=n_fb, stats=n_stats, transcripts=n_tr, versions=len(hashes), quoting=quoting, own_notes=own)


def _indented(text: str, prefix: str = "     ") -> str:
    lines = strip_controls(text).splitlines() or [""]
    return "\n".join(prefix + ln for ln in lines)


def render_bundle_preview(bundle: Bundle, target: str) -> str:
    """Every piece of text the bundle carries, for the reader to read before it is written.

    Feedback notes and transcript messages are shown in full, word for word (control
    characters made visible); a model note that repeats the reader's own words is marked,
    because that is how a hostile explainer would smuggle them out (16.1)."""
    where = "standard output" if target == "-" else target
    out = [f"The bundle for {where} holds exactly this (nothing else is sent):", ""]
    header = bundle.lines[0]
    assert isinstance(header, BundleHeader)
    out.append(f'Explainer: "{strip_controls(header.title)}" ({strip_controls(header.file)}), written {_when(header.created)}')
    for line in bundle.lines:
        if isinstance(line, BundleExplainer):
            out.append(f"  version {line.hash[:8]}: {len(line.sections)} section fingerprint(s) (concept id, title, hash)")
    notes = [x for x in bundle.lines if isinstance(x, BundleFeedback)]
    out += ["", f"Feedback notes: {len(notes)}" + (", each sent word for word:" if notes else "")]
    own = set(bundle.own_notes)
    for i, n in enumerate(notes, 1):
        who = "your own note" if n.uid in own else ("the tutor's note" if n.source == "model" else "a reader's note")
        about = f"on {strip_controls(n.concept_id)}" if n.concept_id else "on the whole explainer"
        out.append(f"  {i}. {who}, {about}, {_when(n.created)}:")
        out.append(_indented(n.text))
        if n.uid in bundle.quoting:
            out.append(f'     ! this note repeats what you wrote: "{strip_controls(bundle.quoting[n.uid])}"')
    stats = [x for x in bundle.lines if isinstance(x, BundleStats)]
    sessions = sorted({x.session_key for x in stats})
    out += ["", f"Anonymous stats: {len(stats)} concept stat(s) from {len(sessions)} session(s), no text:"]
    for key in sessions:
        parts = []
        for x in stats:
            if x.session_key == key:
                flags = (["shaky"] if x.shaky else []) + ([f"explained {x.explained}x"] if x.explained else [])
                parts.append(strip_controls(x.concept_id) + (f" ({', '.join(flags)})" if flags else ""))
        out.append(f"  session {key[:8]}: " + ", ".join(parts))
    transcripts = [x for x in bundle.lines if isinstance(x, BundleTranscript)]
    if not header.with_transcripts:
        out += ["", "Transcripts: none (--with-transcripts adds them)."]
    else:
        out += ["", f"Transcripts: {len(transcripts)}, every message word for word:"]
        for t in transcripts:
            out.append(f"  --- session {t.session_key[:8]}, started {_when(t.started)}, {len(t.messages)} message(s)")
            for m in t.messages:
                out.append(f"   {m.role}:")
                out.append(_indented(m.text, "     "))
    out += ["", "Sessions are named only by an anonymous key; your session ids, paths and key are not in it.", ""]
    if bundle.quoting:
        out.insert(1, f"! {len(bundle.quoting)} of the tutor's notes repeat what you wrote (marked below with !).")
    return "\n".join(out)


def _utf8_strings(obj: Any) -> Any:
    """JSON may carry lone surrogates (``"\\ud800"``); SQLite cannot store them."""
    if isinstance(obj, str):
        return utf8_text(obj)
    if isinstance(obj, list):
        return [_utf8_strings(v) for v in obj]
    if isinstance(obj, dict):
        return {utf8_text(k) if isinstance(k, str) else k: _utf8_strings(v) for k, v in obj.items()}
    return obj


def read_bundle(path: str | Path) -> list[BaseModel]:
    """Parse and validate a whole bundle before anything is written (a bad line changes nothing)."""
    from tutor.files import safe_read_bytes

    p = Path(path)
    raw = safe_read_bytes(path, MAX_BUNDLE_BYTES, what="feedback bundle")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TutorError(f"{p}: not a feedback bundle (not UTF-8 text)") from None
    items: list[BaseModel] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except RecursionError:
            raise TutorError(f"{p}:{n}: not a bundle line (JSON nested too deeply)") from None
        except json.JSONDecodeError as e:
            raise TutorError(f"{p}:{n}: not JSON ({e.msg})", hint="a bundle is one JSON object per line, as written by `tutor feedback export`") from None
        obj = _utf8_strings(obj)
        kind = obj.get("type") if isinstance(obj, dict) else None
        model = _LINE_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise TutorError(f"{p}:{n}: unknown line type {kind!r}", hint="expected header, explainer, feedback, stats or transcript")
        if (kind == "header") != (not items):
            raise TutorError(f"{p}:{n}: not a feedback bundle (the first line must be the bundle header, and only it)")
        try:
            item = model.model_validate(obj)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise TutorError(f"{p}:{n}: bad {kind} line: {where}: {err['msg']}") from None
        if isinstance(item, BundleHeader) and item.version > BUNDLE_VERSION:
            raise TutorError(f"{p}:1: bundle version {item.version} is newer than this tutor understands ({BUNDLE_VERSION})", hint="upgrade tutor")
        items.append(item)
    if not items:
        raise TutorError(f"{p}: empty file, not a feedback bundle")
    return items


class ImportResult(BaseModel):
    path: str
    explainer_path: str
    feedback_added: int
    feedback_skipped: int
    stats_added: int
    transcripts_added: int


def _target_path(store, header: BundleHeader, for_file: str | None) -> tuple[str, bool]:
    """Where the author keeps this explainer: --for, a known file of the same name, ./NAME or ./explainers/NAME."""
    from tutor.store import normalise_path

    if for_file:
        return normalise_path(for_file), True
    # The name comes from someone else's file: no folders, and no control characters, which
    # would otherwise be stored as a path and printed to the author's terminal.
    name = strip_controls(Path(header.file.replace("\\", "/")).name).strip()
    if name in ("", ".", ".."):  # "..".name is ".." — the parent folder is not an explainer (16.7)
        name = "explainer.md"
    rows = store._query("SELECT path FROM explainers ORDER BY last_seen DESC")
    for r in rows:
        if Path(r["path"]).name == name and not r["path"].startswith("bundle:"):
            return r["path"], True
    for cand in (Path(name), Path("explainers") / name):
        if cand.is_file():
            return normalise_path(cand), True
    return normalise_path(name), False


def import_bundle(store, path: str | Path, *, for_file: str | None = None) -> ImportResult:
    """Merge one bundle in a single transaction; rows already present (same uid/key) are skipped."""
    from tutor.store import now_iso

    items = read_bundle(path)
    header = items[0]
    assert isinstance(header, BundleHeader)
    target, found = _target_path(store, header, for_file)
    now = now_iso()
    fb_added = fb_skipped = st_added = tr_added = 0
    with store._write() as c:
        for it in items:
            if isinstance(it, BundleExplainer):
                known = c.execute("SELECT 1 FROM explainers WHERE hash = ?", (it.hash,)).fetchone()
                if not known:
                    c.execute(
                        "INSERT INTO explainers (hash, path, title, format_version, plain, concepts, first_seen, last_seen)"
                        " VALUES (?, ?, ?, 1, 0, ?, ?, ?)",
                        (
                            it.hash,
                            target,
                            it.title,
                            json.dumps([{"id": s.concept_id, "title": s.title} for s in it.sections], ensure_ascii=False),
                            now,
                            now,
                        ),
                    )
                c.executemany(
                    "INSERT OR IGNORE INTO explainer_sections (explainer_hash, concept_id, title, section_hash) VALUES (?, ?, ?, ?)",
                    [(it.hash, s.concept_id, s.title, s.section_hash) for s in it.sections],
                )
        hashes = {r[0] for r in c.execute("SELECT hash FROM explainers")}
        local_keys = {session_key(r[0]) for r in c.execute("SELECT id FROM sessions WHERE mode != ?", (IMPORTED_MODE,))}
        for it in items:
            if isinstance(it, BundleFeedback):
                if it.explainer_hash not in hashes:
                    raise TutorError(f"{path}: feedback {it.uid[:8]} names explainer version {it.explainer_hash[:8]}, which the bundle does not describe")
                # A row already here (same uid) takes the larger count: the reader's session went
                # on repeating the note since the last bundle. Importing again changes nothing.
                here = c.execute("SELECT count FROM feedback WHERE uid = ?", (it.uid,)).fetchone()
                if here is None:
                    c.execute(
                        "INSERT INTO feedback (session_id, explainer_hash, concept_id, text, source, created, uid, session_key, count)"
                        " VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (it.explainer_hash, it.concept_id, it.text, it.source, it.created, it.uid, it.session_key, it.count),
                    )
                    fb_added += 1
                else:
                    if it.count > here[0]:
                        c.execute("UPDATE feedback SET count = ? WHERE uid = ?", (it.count, it.uid))
                    fb_skipped += 1
            elif isinstance(it, BundleStats):
                if it.session_key in local_keys:  # our own sessions, exported and imported back
                    continue
                before = c.execute(
                    "SELECT shaky, explained FROM imported_stats WHERE session_key = ? AND explainer_hash = ? AND concept_id = ?",
                    (it.session_key, it.explainer_hash, it.concept_id),
                ).fetchone()
                c.execute(
                    "INSERT INTO imported_stats (session_key, explainer_hash, concept_id, shaky, explained, imported)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (session_key, explainer_hash, concept_id) DO UPDATE SET"
                    " shaky = max(shaky, excluded.shaky), explained = max(explained, excluded.explained)",
                    (it.session_key, it.explainer_hash, it.concept_id, int(it.shaky), it.explained, now),
                )
                st_added += before is None
            elif isinstance(it, BundleTranscript):
                if it.explainer_hash not in hashes:
                    continue
                exists = c.execute("SELECT 1 FROM sessions WHERE id = ?", (it.session_key,)).fetchone()
                if exists or it.session_key in local_keys:
                    continue
                last = it.messages[-1].created if it.messages else it.started
                c.execute(
                    "INSERT INTO sessions (id, explainer_hash, explainer_path, mode, started, updated, status)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'finished')",
                    (it.session_key, it.explainer_hash, target, IMPORTED_MODE, it.started, last),
                )
                c.executemany(
                    "INSERT INTO messages (session_id, seq, role, text, created, complete) VALUES (?, ?, ?, ?, ?, 1)",
                    [(it.session_key, i + 1, m.role, m.text, m.created) for i, m in enumerate(it.messages)],
                )
                tr_added += 1
    return ImportResult(
        path=str(path),
        explainer_path=target if found else f"{target} (no such file here; use --for FILE)",
        feedback_added=fb_added,
        feedback_skipped=fb_skipped,
        stats_added=st_added,
        transcripts_added=tr_added,
    )


def open_store(db: str | None):
    from tutor.paths import db_path
    from tutor.store import Store

    return Store.open(db_path(db))


def default_bundle_name(explainer) -> str:
    stem = Path(explainer.path).stem
    return f"{stem}.feedback.jsonl"


__all__ = [
    "FeedbackReport",
    "build_report",
    "render_report",
    "export_bundle",
    "build_bundle",
    "write_bundle",
    "bundle_target",
    "render_bundle_preview",
    "import_bundle",
    "read_bundle",
    "session_key",
    "overview",
    "render_overview",
    "open_store",
    "default_bundle_name",
]
