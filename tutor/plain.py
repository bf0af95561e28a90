"""``tutor open FILE --plain``: the tutor as a line-based dialogue on stdin/stdout.

Why: pipes, scripts, screen readers and terminals where a full-screen app is a burden
all want plain lines. It drives the same TutorSession as the app; nothing here knows
whether Claude or the offline guide is answering. Output has no ANSI codes, and text
from the explainer or the model has terminal control characters removed, so a hostile
file cannot drive the terminal.

End of input (Ctrl-D, or the end of a pipe) and ``/quit`` end the session cleanly: it
is saved after every message anyway, and we say how to resume it.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
from typing import Any, TextIO

from tutor.engine.events import ErrorEvent, TextDelta, TurnFinished
from tutor.engine.reader_model import find_concepts

# Exit status when the session ends (end of input, /quit) right after a reply that failed
# (401, 529, no server...): a script must be able to tell that nobody answered it.
# 1 is taken by user errors, 2 by click's usage errors, 130 by Ctrl-C.
EXIT_REPLY_FAILED = 3

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

HELP = """\
Type your answer and press Enter. Empty line: read on. Commands:
  /skip            skip the current concept
  /know [TOPIC]    you already know a concept (id, title or number from /progress;
                   default: the current one)
  /explain [TOPIC] explain a concept (again; default: the current one)
  /feedback TEXT   leave a note for the explainer's author
  /progress        what you know so far
  /retry           resend your last message if its reply failed
  /help            this help
  /quit            leave (the session is saved; resume with tutor open FILE)"""


def clean(text: str) -> str:
    """Untrusted text for a terminal: no escape sequences or control characters."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


class PlainUI:
    def __init__(self, session: Any, stdin: TextIO, stdout: TextIO, stderr: TextIO):
        self.s = session
        self.stdin = stdin
        self.out = stdout
        self.err = stderr
        self.interactive = _isatty(stdin) and _isatty(stdout)
        self._col0 = True
        self.last_failed: str | None = None  # the error of the last turn, if it failed

    def write(self, text: str) -> None:
        text = clean(text)
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
        async for ev in events:
            if isinstance(ev, TextDelta):
                self.write(ev.text)
            elif isinstance(ev, ErrorEvent):
                self.last_failed = ev.message
                self.line(f"[error] {ev.message}")
                if ev.retryable:
                    self.line("Type /retry to send your message again.")
            elif isinstance(ev, TurnFinished):
                if not ev.complete and ev.stop_reason == "max_tokens":
                    self.line("[the reply was cut off at the length limit]")
        self.line()

    def finish(self) -> int:
        """Say goodbye; the exit status tells a script whether the last reply failed."""
        self.line(self.resume_hint())
        if self.last_failed is None:
            return 0
        reason = clean(self.last_failed).splitlines()[0].rstrip(".")
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
            self.err.write(clean(n) + "\n")
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
        if self.s.resumed and self.s.guide is None:
            last = self.s.last_tutor_message()
            if last:
                self.line("Last from the tutor:")
                self.line(last)
        self._turn(runner, self.s.start())
        while True:
            line = self.read_line()
            if line == "":
                return self.finish()
            text = line.rstrip("\n")
            if not _isatty(self.stdin):
                self.line(f"> {text}")  # echo piped input so the output reads as a dialogue
            cmd, _, arg = text.strip().partition(" ")
            cmd = cmd.lower()
            if not text.strip().startswith("/"):
                self._turn(runner, self.s.reply(text))
                continue
            if cmd in ("/quit", "/exit", "/q"):
                return self.finish()
            if cmd in ("/help", "/?"):
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
            elif cmd in ("/progress", "/states"):
                self.line(self.progress())
            elif cmd == "/retry":
                self._turn(runner, self.s.retry())
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
    session: Any,
    *,
    notices: list[str] | None = None,
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
    return ui.run(list(notices or []))
