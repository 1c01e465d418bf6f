"""The approval channel's line reader given a peer that never ends its line."""

from __future__ import annotations

import socket
import threading

import pytest

from workbench_dsl.backends.approvals.channel import MAX_LINE_BYTES, read_line


def test_a_line_without_end_is_refused_at_the_limit_not_read_forever() -> None:
    ours, theirs = socket.socketpair()
    stop = threading.Event()

    def flood() -> None:
        chunk = b"x" * 65536
        try:
            while not stop.is_set():
                theirs.sendall(chunk)
        except OSError:
            pass

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    try:
        with pytest.raises(ValueError, match="longer than"):
            read_line(ours, bytearray())
    finally:
        stop.set()
        ours.close()
        t.join(10)
        theirs.close()


def test_lines_within_the_limit_are_read_one_by_one() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b'{"op": "list"}\n{"op": "x", "pad": "' + b"y" * 1000 + b'"}\n')
        buf = bytearray()
        assert read_line(ours, buf) == {"op": "list"}
        assert read_line(ours, buf)["op"] == "x"  # type: ignore[index]
        assert MAX_LINE_BYTES >= 64 * 1024
