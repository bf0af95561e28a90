"""Feedback bundles: what a reader sends the author, and what the author imports.

A *bundle* (JSON Lines) is what a reader sends the author: feedback and anonymous
per-concept stats, and transcripts only with ``--with-transcripts``. Every feedback row
has a stable ``uid`` (migration m003_authors), so importing a bundle twice adds nothing.
Sessions are named in a bundle only by ``session_key`` -- a hash of the session id, which
tells the author "these came from the same session" and nothing else.

The queries are ``Store`` methods (tutor/store/authoring.py; tables in docs/database.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError

from tutor.authoring.report import versions_of, when
from tutor.errors import TutorError
from tutor.store import IMPORTED_MODE, Store, section_hash, session_key
from tutor.text import strip_controls, utf8_text

BUNDLE_FORMAT: Final = "tutor-feedback-bundle"
BUNDLE_VERSION = 1
MAX_BUNDLE_BYTES = 200 * 1024 * 1024


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


def build_bundle(store: Store, explainer, *, with_transcripts: bool = False) -> Bundle:
    """Every line of the bundle for every version of ``explainer`` in this database."""
    from tutor.store import now_iso

    hashes = versions_of(store, explainer)
    lines: list[BaseModel] = [
        BundleHeader(created=now_iso(), title=explainer.title, file=Path(explainer.path).name, with_transcripts=with_transcripts)
    ]
    by_hash: dict[str, list[BundleSection]] = {}
    for r in store.sections(hashes):
        by_hash.setdefault(r.explainer_hash, []).append(
            BundleSection(concept_id=r.concept_id, title=r.title, section_hash=r.section_hash)
        )
    by_hash.setdefault(explainer.content_hash, [])
    if not by_hash[explainer.content_hash]:
        by_hash[explainer.content_hash] = [
            BundleSection(concept_id=c.id, title=c.title, section_hash=section_hash(c.section.text)) for c in explainer.concepts
        ]
    titles = store.explainer_titles(hashes)
    for h in hashes:
        lines.append(
            BundleExplainer(hash=h, title=titles.get(h, explainer.title), file=Path(explainer.path).name, sections=by_hash.get(h, []))
        )
    notes = _bundle_feedback(store, hashes)
    lines += notes.items
    stats = _bundle_stats(store, hashes)
    lines += stats
    transcripts = _bundle_transcripts(store, hashes) if with_transcripts else []
    lines += transcripts
    return Bundle(lines=lines, feedback=len(notes.items), stats=len(stats), transcripts=len(transcripts), versions=len(hashes),
                  quoting=notes.quoting, own_notes=notes.own)


class _Notes(BaseModel):
    items: list[BundleFeedback] = Field(default_factory=list)
    quoting: dict[str, str] = Field(default_factory=dict)
    own: list[str] = Field(default_factory=list)


def _bundle_feedback(store: Store, hashes: list[str]) -> _Notes:
    """The feedback lines, oldest first, with the model notes that repeat the reader's words."""
    out = _Notes()
    reader_words: dict[str, list[str]] = {}
    for r in store.version_feedback(hashes):
        if r.source == "rules":  # about the tutor's instructions, not for the explainer's author
            continue
        key = r.session_key or (session_key(r.session_id) if r.session_id else None)
        item = BundleFeedback(
            uid=r.uid or hashlib.sha256(f"{r.id}:{r.created}:{r.text}".encode()).hexdigest()[:32],
            explainer_hash=r.explainer_hash,
            concept_id=r.concept_id,
            text=r.text,
            source="reader" if r.source == "reader" else "model",
            created=r.created,
            session_key=key,
            count=max(1, r.count),
        )
        if r.session_id and item.source == "reader":
            out.own.append(item.uid)
        elif r.session_id:
            if r.session_id not in reader_words:
                reader_words[r.session_id] = store.reader_texts(r.session_id)
            hit = quoted_words(item.text, reader_words[r.session_id])
            if hit:
                out.quoting[item.uid] = hit
        out.items.append(item)
    return out


def _bundle_stats(store: Store, hashes: list[str]) -> list[BundleStats]:
    stats = [
        BundleStats(session_key=session_key(r.session_id), explainer_hash=r.explainer_hash, concept_id=r.concept_id,
                    shaky=r.shaky, explained=r.explained)
        for r in store.concept_stats(hashes)
    ]
    stats += [
        BundleStats(session_key=r.session_key, explainer_hash=r.explainer_hash, concept_id=r.concept_id,
                    shaky=r.shaky, explained=r.explained)
        for r in store.imported_stats(hashes)
    ]
    return stats


def _bundle_transcripts(store: Store, hashes: list[str]) -> list[BundleTranscript]:
    out = []
    for s in store.version_sessions(hashes):
        key = s.id if s.mode == IMPORTED_MODE else session_key(s.id)
        msgs = [BundleMessage(role=m.role, text=m.text, created=m.created)  # type: ignore[arg-type]
                for m in store.messages(s.id) if m.role in ("reader", "tutor", "system")]
        out.append(BundleTranscript(session_key=key, explainer_hash=s.explainer_hash, started=s.started, messages=msgs))
    return out


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
    out.append(f'Explainer: "{strip_controls(header.title)}" ({strip_controls(header.file)}), written {when(header.created)}')
    for line in bundle.lines:
        if isinstance(line, BundleExplainer):
            out.append(f"  version {line.hash[:8]}: {len(line.sections)} section fingerprint(s) (concept id, title, hash)")
    notes = [x for x in bundle.lines if isinstance(x, BundleFeedback)]
    out += ["", f"Feedback notes: {len(notes)}" + (", each sent word for word:" if notes else "")]
    own = set(bundle.own_notes)
    for i, n in enumerate(notes, 1):
        who = "your own note" if n.uid in own else ("the tutor's note" if n.source == "model" else "a reader's note")
        about = f"on {strip_controls(n.concept_id)}" if n.concept_id else "on the whole explainer"
        out.append(f"  {i}. {who}, {about}, {when(n.created)}:")
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
            out.append(f"  --- session {t.session_key[:8]}, started {when(t.started)}, {len(t.messages)} message(s)")
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
    for known in store.explainer_paths():
        if Path(known).name == name and not known.startswith("bundle:"):
            return known, True
    for cand in (Path(name), Path("explainers") / name):
        if cand.is_file():
            return normalise_path(cand), True
    return normalise_path(name), False


def import_bundle(store: Store, path: str | Path, *, for_file: str | None = None) -> ImportResult:
    """Merge one bundle in a single transaction; rows already present (same uid/key) are skipped."""
    items = read_bundle(path)
    header = items[0]
    assert isinstance(header, BundleHeader)
    target, found = _target_path(store, header, for_file)
    explainers = [it for it in items if isinstance(it, BundleExplainer)]
    feedback = [it for it in items if isinstance(it, BundleFeedback)]
    described = {e.hash for e in explainers} | store.known_explainers(f.explainer_hash for f in feedback)
    for it in feedback:
        if it.explainer_hash not in described:
            raise TutorError(f"{path}: feedback {it.uid[:8]} names explainer version {it.explainer_hash[:8]}, which the bundle does not describe")
    counts = store.import_bundle(
        target,
        explainers,
        feedback,
        [it for it in items if isinstance(it, BundleStats)],
        [it for it in items if isinstance(it, BundleTranscript)],
    )
    return ImportResult(
        path=str(path),
        explainer_path=target if found else f"{target} (no such file here; use --for FILE)",
        feedback_added=counts.feedback_added,
        feedback_skipped=counts.feedback_skipped,
        stats_added=counts.stats_added,
        transcripts_added=counts.transcripts_added,
    )


def default_bundle_name(explainer) -> str:
    stem = Path(explainer.path).stem
    return f"{stem}.feedback.jsonl"

