"""``tutor open FILE --plain``: the tutor as a line-based dialogue on stdin/stdout.

Why: pipes, scripts, screen readers and terminals where a full-screen app is a burden
all want plain lines. It drives the same TutorSession as the app; nothing here knows
whether Claude or the offline guide is answering. Output has no ANSI codes, and text
from the explainer or the model has terminal control characters removed, so a hostile
file cannot drive the terminal.

End of input (Ctrl-D, or the end of a pipe) and ``/quit`` end the session cleanly: it
is saved after every message anyway, and we say how to resume it.

The tutor's Markdown is printed as plain text (no ``**``, backticks or ``#``): a screen
reader would read every asterisk aloud. ``PlainMarkdown`` renders it line by line as it
streams, with markdown-it, so the reader still hears the reply as it arrives.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shlex
import sys
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TextIO

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

from tutor.engine.commands import typed_command
from tutor.engine.events import ErrorEvent, Notice, Retrying, TextDelta, Thinking, TurnFinished
from tutor.engine.reader_model import find_concepts
from tutor.errors import ErrorCode
from tutor.text import strip_controls

if TYPE_CHECKING:
    from tutor.engine.notices import StartNotice
    from tutor.engine.session import TutorSession

# Exit status when the session ends (end of input, /quit) right after a reply that failed
# (401, 529, no server...): a script must be able to tell that nobody answered it.
# 1 is taken by user errors, 2 by click's usage errors, 130 by Ctrl-C.
EXIT_REPLY_FAILED = 3

HELP = """\
Type your answer and press Enter. Empty line: read on. Commands:
  /skip            skip the current concept
  /know [TOPIC]    you already know a concept (id, title or number from /progress;
                   default: the current one)
  /explain [TOPIC] explain a concept (again; default: the current one)
  /feedback TEXT   leave a note for the explainer's author
  /progress        what you know so far
  /retry           resend your last message if its reply failed
  /offline         carry on without Claude, in the offline guided mode
  /help            this help
  /quit            leave (the session is saved; resume with tutor open FILE)"""


# -- Markdown to plain text ----------------------------------------------------------------


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # html off: "<b>" in a reply is text to read, not markup to drop. Tables and ~~strike~~
    # as the app shows them.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def _inline_text(node: SyntaxTreeNode) -> str:
    parts: list[str] = []
    for child in node.children:
        t = child.type
        if t in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif t in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif t == "image":
            parts.append(_inline_text(child) or "image")
        elif t == "link":
            label = _inline_text(child)
            href = str(child.attrs.get("href", ""))
            # The address is part of what the reader needs, unless the label already is it.
            parts.append(label if not href or href in (label, "mailto:" + label) else f"{label} ({href})")
        else:  # em, strong, s: the words without their markers
            parts.append(_inline_text(child))
    return "".join(parts)


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0]] + [(rest + ln) if ln else ln for ln in lines[1:]])


def _block_text(node: SyntaxTreeNode) -> str:
    t = node.type
    if t in ("paragraph", "heading"):
        return _inline_text(node.children[0]) if node.children else ""
    if t in ("fence", "code_block"):
        return _indent(node.content.rstrip("\n"), "    ", "    ")
    if t == "hr":
        return "* * *"
    if t == "blockquote":
        return _indent(_blocks_text(node.children), "  ", "  ")
    if t in ("bullet_list", "ordered_list"):
        start = int(node.attrs.get("start", 1) or 1)
        tight = all(p.hidden for item in node.children for p in item.children if p.type == "paragraph")
        items = []
        for k, item in enumerate(node.children):
            marker = f"{start + k}. " if t == "ordered_list" else "- "
            body = _blocks_text(item.children, sep="\n" if tight else "\n\n")
            items.append(_indent(body, marker, " " * len(marker)))
        return ("\n" if tight else "\n\n").join(items)
    if t == "table":
        rows = [row for section in node.children for row in section.children]
        return "\n".join(" | ".join(_inline_text(cell.children[0]) if cell.children else "" for cell in row.children) for row in rows)
    if t == "html_block":
        return node.content.rstrip("\n")
    return _blocks_text(node.children)


def _blocks_text(nodes: list[SyntaxTreeNode], sep: str = "\n\n") -> str:
    return sep.join(b for b in (_block_text(n) for n in nodes) if b)


def markdown_to_text(md: str) -> str:
    """Markdown as plain text for a terminal or a screen reader: the words, code as is
    (code blocks indented four spaces), list markers and link addresses kept."""
    return _blocks_text(SyntaxTreeNode(_parser().parse(md)).children)


_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_INLINE_SPECIAL = re.compile(r"[*_`\[\]~<>&\\!|]")
_SPACES_BEFORE_NL = re.compile(r"[ \t]+\n")


class PlainMarkdown:
    """Streamed Markdown to plain text.

    Text is rendered a block at a time (the lines up to a blank line), because emphasis
    and code spans run over the hard-wrapped lines of an explainer; code fences are
    printed line by line, indented. So that prose still streams, the words of a block
    are let out as they arrive for as long as it is plain prose: every line starts with
    a letter and nothing could be markup. Once something could be, the rest of the
    block waits for its end and is rendered then."""

    def __init__(self) -> None:
        self._buf = ""  # the current line, not yet ended
        self._block: list[str] = []  # the current block's complete lines
        self._fence: str | None = None  # inside a code fence: its backticks/tildes
        self._sent = ""  # what was let out of the current block as plain words
        self._printed = False  # anything printed yet: the next block is set off by a blank line
        self._started = False  # the current block (or fence) has printed its blank line
        self._fence_blanks = 0  # blank lines in a fence, printed once a line follows them

    def feed(self, text: str) -> str:
        self._buf += text
        out: list[str] = []
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            out.append(self._line(line))
        if self._fence is None:
            out.append(self._words())
        return "".join(out)

    def close(self) -> str:
        """The rest: the last line (it has no newline) and its block."""
        out = self._line(self._buf) if self._buf else ""
        self._buf = ""
        return (out + self._end_block()).rstrip("\n")

    def _start(self, text: str) -> str:
        """``text`` opens the current block: after an earlier block, a blank line first."""
        if not text:
            return ""
        sep = "\n" if self._printed and not self._started else ""
        self._printed = self._started = True
        return sep + text

    def _words(self) -> str:
        text = "\n".join(self._block + [self._buf])
        # Up to the end of the last whole word: what follows it may still change.
        cut = max(text.rfind(" "), text.rfind("\n"))
        head = _SPACES_BEFORE_NL.sub("\n", text[:cut].rstrip(" \n")) if cut > 0 else ""
        if len(head) <= len(self._sent) or _INLINE_SPECIAL.search(head):
            return ""
        if not all(ln[:1].isalpha() for ln in head.split("\n")):
            return ""  # a list, heading, quote or table: wait for the block's end
        piece = head[len(self._sent) :]
        self._sent = head
        return self._start(piece)

    def _end_block(self) -> str:
        block, self._block = self._block, []
        sent, self._sent = self._sent, ""
        out = ""
        if block:
            rendered = markdown_to_text("\n".join(block))
            if sent:  # the words already out are the rendering's start (plain prose renders as is)
                rendered = rendered[len(os.path.commonprefix([sent, rendered])) :]
            out = self._start(rendered)
            if out or sent:
                out += "\n"
        self._started = False
        return out

    def _line(self, line: str) -> str:
        m = _FENCE_RE.match(line)
        if self._fence is not None:
            if m and m.group(1)[0] == self._fence[0] and len(m.group(1)) >= len(self._fence) and not line[m.end() :].strip():
                self._fence = None
                self._started = False
                self._fence_blanks = 0
                return ""
            if not line.strip():
                self._fence_blanks += 1
                return ""
            blanks, self._fence_blanks = "\n" * self._fence_blanks, 0
            return self._start(blanks + "    " + line + "\n")
        if m and not (m.group(1)[0] == "`" and "`" in line[m.end() :]):
            out = self._end_block()  # a fence may interrupt a paragraph
            self._fence = m.group(1)
            return out
        if not line.strip():
            return self._end_block()
        self._block.append(line)
        return ""


class PlainUI:
    def __init__(self, session: TutorSession, stdin: TextIO, stdout: TextIO, stderr: TextIO):
        self.s = session
        self.stdin = stdin
        self.out = stdout
        self.err = stderr
        self.interactive = _isatty(stdin) and _isatty(stdout)
        self._col0 = True
        self._md = PlainMarkdown()
        self.last_failed: str | None = None  # the error of the last turn, if it failed

    def write(self, text: str) -> None:
        text = strip_controls(text)
        if not text:
            return
        self.out.write(text)
        self.out.flush()
        self._col0 = text.endswith("\n")

    def line(self, text: str = "") -> None:
        if not self._col0:
            self.write("\n")
        self.write(text + "\n")

    async def show(self, events: Any) -> None:
        """Print one turn's events as they arrive."""
        self.last_failed = None
        self._md = PlainMarkdown()
        async for ev in events:
            if isinstance(ev, TextDelta):
                self.write(self._md.feed(ev.text))
            elif isinstance(ev, Thinking):
                if not ev.done:  # one quiet line, so a screen reader hears that something is happening
                    self.line("(thinking…)")
            elif isinstance(ev, Notice):
                self.flush_markdown()
                self.line(f"[note] {ev.text}")
            elif isinstance(ev, Retrying):  # the wait is said, so a stalled turn is never silent
                self.line(f"({ev.reason} Retrying in {math.ceil(ev.seconds)} s, retry {ev.attempt} of {ev.of}; Ctrl-C to stop.)")
            elif isinstance(ev, ErrorEvent):
                self.flush_markdown()
                self.last_failed = ev.message
                self.line(f"[error] {ev.message}")
                if ev.retryable:
                    self.line("Type /retry to send your message again.")
                elif ev.code == ErrorCode.AUTH:
                    self.line("Type /offline to carry on in the offline guided mode.")
            elif isinstance(ev, TurnFinished):
                self.flush_markdown()
                if not ev.complete and ev.stop_reason == "max_tokens":
                    self.line("[the reply was cut off at the length limit]")
        self.flush_markdown()
        self.line()

    def flush_markdown(self) -> None:
        """Print the rest of the reply held back for rendering (its last line)."""
        self.write(self._md.close())

    def finish(self) -> int:
        """Say goodbye; the exit status tells a script whether the last reply failed."""
        self.line(self.resume_hint())
        if self.last_failed is None:
            return 0
        reason = strip_controls(self.last_failed).splitlines()[0].rstrip(".")
        self.err.write(f"tutor: the session ended on a failed reply ({reason}); exit status {EXIT_REPLY_FAILED}.\n")
        self.err.flush()
        return EXIT_REPLY_FAILED

    def resume_hint(self) -> str:
        return f"Session saved. Resume with: tutor open {shlex.quote(str(self.s.explainer.path))} --resume {self.s.id[:8]}"

    def progress(self) -> str:
        rows = []
        for i, c in enumerate(self.s.explainer.concepts, 1):
            st = self.s.states()[c.id]
            mark = " (skipped)" if c.id in self.s.model.skipped else ""
            here = "  <- current" if c.id == self.s.current_concept else ""
            rows.append(f"  {i:>2}. {st:<10} {c.title} [{c.id}]{mark}{here}")
        return "Progress:\n" + "\n".join(rows)

    def concept_arg(self, arg: str, usage: str) -> str | None:
        concepts = self.s.explainer.concepts
        if arg.strip().isdigit() and 1 <= int(arg) <= len(concepts):  # a number from /progress
            return concepts[int(arg) - 1].id
        hits = find_concepts(self.s.explainer, arg) if arg.strip() else []
        if len(hits) > 1:  # "wal": wal-file or wal-index? Ask rather than guess.
            options = "; ".join(f"{usage} {h} ({self.s.explainer.concept(h).title})" for h in hits)
            self.line(f"{usage}: {arg.strip()!r} could mean more than one concept: {options}. Which one?")
            return None
        cid = hits[0] if hits else None
        if cid is None:
            ids = ", ".join(c.id for c in self.s.explainer.concepts)
            self.line(f"{usage}: no concept matches {arg!r}. Concepts: {ids}" if arg.strip() else f"Usage: {usage} TOPIC (one of: {ids})")
        return cid

    def run(self, notices: list[str]) -> int:
        """The dialogue loop. Lines are read outside the event loop, so Ctrl-C at the
        prompt quits at once, while Ctrl-C during a reply only interrupts that reply
        (its partial text is saved, marked incomplete) and the dialogue goes on."""
        for n in notices:
            self.err.write(strip_controls(n) + "\n")
        self.err.flush()
        with asyncio.Runner() as runner:
            try:
                return self._loop(runner)
            except KeyboardInterrupt:
                self.line("Interrupted. " + self.resume_hint())
                return 130
            finally:
                runner.run(self.s.aclose())

    def _turn(self, runner: asyncio.Runner, events: Any) -> None:
        try:
            runner.run(self.show(events))
        except KeyboardInterrupt:
            self.flush_markdown()
            self.line("[interrupted: what arrived is saved; type /retry to ask again]")

    def read_line(self) -> str:
        """One line of input ('' at end of input). On a terminal, input() with readline gives
        the reader line editing (arrow keys, Home/End) and this session's history, instead of
        raw escape sequences in their answer."""
        if not self.interactive:
            return self.stdin.readline()
        if self.stdin is sys.stdin and self.out is sys.stdout:
            _enable_line_editing()
            try:
                return input("> ") + "\n"
            except EOFError:
                self.write("\n")
                return ""
            except KeyboardInterrupt:
                self.write("\n")  # the goodbye goes on its own line, not after the prompt
                raise
        self.write("> ")
        line = self.stdin.readline()
        self._col0 = True  # the reader's Enter ended the prompt line
        return line

    def _loop(self, runner: asyncio.Runner) -> int:
        # Orientation first, for a screen reader above all: what is open, how to get help.
        self.line(f"{markdown_to_text(self.s.explainer.title) or self.s.explainer.path}. "
                  "Type /help for the commands, /quit to leave.")
        self.line()
        if self.s.resumed and self.s.guide is None:
            last = self.s.last_tutor_message()
            if last:
                self.line("Last from the tutor:")
                self.line(markdown_to_text(last))
        self._turn(runner, self.s.start())
        while True:
            line = self.read_line()
            if line == "":
                return self.finish()
            text = line.rstrip("\n")
            if not _isatty(self.stdin):
                self.line(f"> {text}")  # echo piped input so the output reads as a dialogue
            typed = typed_command(text)
            if typed is None:
                self._turn(runner, self.s.reply(text))
                continue
            cmd, arg = typed
            if cmd == "/quit":
                return self.finish()
            if cmd == "/help":
                self.line(HELP)
            elif cmd == "/skip":
                self._turn(runner, self.s.skip())
            elif cmd == "/know":
                cid = (None if arg.strip() else self.s.current_concept) or self.concept_arg(arg, "/know")
                if cid:
                    self._turn(runner, self.s.mark_known(cid))
            elif cmd == "/explain":
                cid = (None if arg.strip() else self.s.current_concept) or self.concept_arg(arg, "/explain")
                if cid:
                    self._turn(runner, self.s.explain(cid))
            elif cmd == "/feedback":
                if not arg.strip():
                    self.line("Usage: /feedback TEXT (a note for the explainer's author)")
                else:
                    self.s.add_reader_feedback(arg)
                    self.line("Thanks, your note is saved for the author.")
            elif cmd == "/progress":
                self.line(self.progress())
            elif cmd == "/retry":
                self._turn(runner, self.s.retry())
            elif cmd == "/offline":
                if self.s.guide is not None:
                    self.line("This session is already in the offline guided mode.")
                else:
                    self._turn(runner, self.s.go_offline())
            else:
                self.line(f"Unknown command {cmd}. Type /help for the list.")


def _enable_line_editing() -> None:
    try:
        import readline  # noqa: F401  (importing it is what turns editing on for input())
    except ImportError:  # pragma: no cover - Windows without pyreadline: input() still works
        pass


def _isatty(f: Any) -> bool:
    try:
        return bool(f.isatty())
    except (AttributeError, ValueError):
        return False


def run_plain(
    session: TutorSession,
    *,
    notices: Iterable[StartNotice] = (),
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the line-based dialogue until end of input or /quit. Returns the exit code."""
    for given, stream in ((stdin, sys.stdin), (stdout, sys.stdout), (stderr, sys.stderr)):
        # Undecodable input or an ASCII-only terminal must not end the session with a traceback.
        if given is None and stream is not None:
            try:
                stream.reconfigure(errors="replace")  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                pass
    ui = PlainUI(session, stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr)
    return ui.run([n.text for n in notices])
