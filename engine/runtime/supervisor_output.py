"""The supervisord event listener of a local run: it prints every program's output on the
terminal, each line led by the program's name (``web    | ...``), as honcho did.

supervisord sends output as PROCESS_LOG events in chunks that need not end at a line's end;
each program's unfinished line is held until its end arrives. The protocol (supervisord's
"Event Listeners" docs) is spoken on bytes: the ``len`` header counts bytes, and output in
Chinese would desynchronise a reader that counted characters. Lines go to standard error,
which supervisord copies to its own standard output; standard output is the protocol.

Run by supervisord as ``python -m engine.runtime.supervisor_output --width N``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import BinaryIO

READY = b"READY\n"
OK = b"RESULT 2\nOK"


class Printer:
    """Splits each program's output into lines and writes them with its name in front."""

    def __init__(self, out: BinaryIO, width: int) -> None:
        self.out = out
        self.width = width
        self.pending: dict[bytes, bytes] = {}

    def feed(self, name: bytes, data: bytes) -> None:
        text = self.pending.pop(name, b"") + data
        *lines, rest = text.split(b"\n")
        if rest:
            self.pending[name] = rest
        for line in lines:
            self._write(name, line)
        self.out.flush()

    def flush(self) -> None:
        for name, rest in sorted(self.pending.items()):
            self._write(name, rest)
        self.pending.clear()
        self.out.flush()

    def _write(self, name: bytes, line: bytes) -> None:
        self.out.write(name.ljust(self.width) + b" | " + line.rstrip(b"\r") + b"\n")


def headers(line: bytes) -> dict[bytes, bytes]:
    pairs = (token.split(b":", 1) for token in line.split())
    return dict((p[0], p[1]) for p in pairs if len(p) == 2)


def serve(inp: BinaryIO, protocol: BinaryIO, printer: Printer) -> None:
    """Answer supervisord until it closes the pipe."""
    while True:
        protocol.write(READY)
        protocol.flush()
        line = inp.readline()
        if not line:
            return
        envelope = headers(line)
        payload = inp.read(int(envelope.get(b"len", b"0")))
        if envelope.get(b"eventname", b"").startswith(b"PROCESS_LOG"):
            head, _, data = payload.partition(b"\n")
            printer.feed(headers(head).get(b"processname", b"?"), data)
        protocol.write(OK)
        protocol.flush()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=6, help="width of the name column")
    args = parser.parse_args(argv)
    printer = Printer(sys.stderr.buffer, args.width)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # supervisord stops it, last
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer, printer)
    finally:
        printer.flush()


if __name__ == "__main__":
    main()
