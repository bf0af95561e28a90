"""What readers' tutors flagged, flowing back to the author: the report (``tutor feedback FILE``).

``tutor feedback FILE`` groups the model's ``<feedback>`` tags and readers' own notes by
concept section (newest first), shows the explainer version (content hash) each was
given against, flags items whose section has been edited since, and adds a "stuck" line
per concept (sessions that marked it shaky or needed it explained twice).

Bundles (what a reader sends the author) are in ``tutor/authoring/bundles.py``.

The queries are ``Store`` methods (tutor/store/authoring.py; tables in docs/database.md).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tutor.store import IMPORTED_MODE, FeedbackOverviewRow, Store, section_hash, session_key
from tutor.text import note_key, plural, strip_controls

SectionStatus = Literal["current", "unchanged", "changed", "removed", "unknown", "general"]


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


def versions_of(store: Store, explainer) -> list[str]:
    """Every version (content hash) of ``explainer``'s file: feedback on old versions counts too."""
    hashes = set(store.explainer_hashes(explainer.path))
    if explainer.content_hash:
        hashes.add(explainer.content_hash)
    return sorted(hashes)


def concept_stats(store: Store, hashes: list[str]) -> tuple[dict[str, StuckStats], int]:
    """Per concept: sessions that reached it, marked it shaky, or had it explained twice.

    Local sessions come from the concept-state log; imported bundles from imported_stats.
    Returns (stats per concept, number of distinct sessions overall).
    """
    per: dict[str, dict[str, set[str]]] = {}

    def bucket(cid: str) -> dict[str, set[str]]:
        return per.setdefault(cid, {"seen": set(), "shaky": set(), "twice": set()})

    all_sessions = {session_key(sid) for sid in store.local_session_ids(hashes)}
    counted = [(session_key(r.session_id), r.concept_id, r.shaky, r.explained) for r in store.concept_stats(hashes)]
    for r in store.imported_stats(hashes):
        all_sessions.add(r.session_key)
        counted.append((r.session_key, r.concept_id, r.shaky, r.explained))
    for key, cid, shaky, explained in counted:
        b = bucket(cid)
        b["seen"].add(key)
        if shaky:
            b["shaky"].add(key)
        if explained >= 2:
            b["twice"].add(key)
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

    try:
        return load(file), None
    except ExplainerError as e:
        title = store.latest_explainer_title(file)
        if title is None:
            raise
        first = str(e.problems[0]) if e.problems else str(e)
        warning = f"warning: {first}\nshowing the feedback without comparing sections to the current file"
        return _Unloadable(path=file, title=title), warning


def build_report(store, explainer, source: str | None = None) -> FeedbackReport:
    """The feedback on every version of ``explainer``'s file, grouped by its current sections
    (only notes from ``source``: model, reader or rules, when given)."""
    hashes = versions_of(store, explainer)
    rows = [r for r in store.version_feedback(hashes, newest_first=True) if source is None or r.source == source]
    old_sections = {(r.explainer_hash, r.concept_id): r.section_hash for r in store.sections(hashes)}
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
        cid = r.concept_id or None
        h = r.explainer_hash
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
        imported = r.session_mode == IMPORTED_MODE or (r.session_id is None and bool(r.session_key))
        sess = r.session_key if r.session_id is None else r.session_id
        item = FeedbackItem(
            uid=r.uid or f"local-{r.id}",
            concept_id=cid,
            text=r.text,
            source=r.source if r.source in ("model", "reader", "rules") else "model",
            created=r.created,
            explainer_hash=h,
            version=h[:8],
            section_status=status,
            session=(sess or "")[:8] or None,
            imported=imported,
            count=max(1, r.count),
        )
        key = (cid, item.source, note_key(item.text), item.changed_since)
        if key in same:  # rows come newest first: the newest wording and time stay
            seen, sessions = same[key]
            seen.count += item.count
            sessions.add(sess or f"row-{r.id}")
            seen.sessions = len(sessions)
            continue
        same[key] = (item, {sess or f"row-{r.id}"})
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


def when(created: str) -> str:
    """A stored time as the author reads it: ``2025-01-02 13:45``."""
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
            meta = f"{when(it.created)}  {who}  v{it.version}" + (f"  [{flag}]" if flag else "")
            if it.imported:
                meta += "  (imported)"
            if it.count > 1:
                meta += f"  ×{it.count}" + (f" in {it.sessions} sessions" if it.sessions > 1 else "")
            out.append(f" - {meta}")
            for line in strip_controls(it.text).strip().splitlines() or [""]:
                out.append(f"     {line}")
    return "\n".join(out) + "\n"


def overview(store: Store) -> list[FeedbackOverviewRow]:
    """Every explainer with feedback: path, title, counts, newest item (``tutor feedback`` without FILE)."""
    return store.feedback_overview()


def render_overview(rows: list[FeedbackOverviewRow]) -> str:
    if not rows:
        return "No feedback yet.\n"
    out = ["Feedback per explainer (newest first); show one with `tutor feedback FILE`:"]
    for r in rows:
        out.append(
            f"  {r.items:>4}  ({r.model} tutor, {r.reader} reader)  newest {when(r.newest)}  "
            f"{strip_controls(r.title)}  {strip_controls(r.path)}"
        )
    return "\n".join(out) + "\n"

