"""The progress bar: drawn on a terminal, silent anywhere else (CI, pipes)."""

from __future__ import annotations

import io
import re

from gateway.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_ends_full():
    stream = Terminal()
    bar = ProgressBar("importing users", stream, width=10)
    bar.update(0, 4)
    bar.update(4, 4)
    bar.close()
    frames = stream.getvalue().split("\r")[1:]
    assert re.fullmatch(r"importing users \[-{10}\] 0/4 \([\d,]+/s\)", frames[0])
    assert re.fullmatch(r"importing users \[#{10}\] 4/4 \([\d,]+/s\)\n", frames[-1])


def test_without_a_total_it_counts():
    stream = Terminal()
    bar = ProgressBar("rebuilding", stream)
    bar.update(1_500)
    assert re.fullmatch(r"\rrebuilding 1,500 \([\d,]+/s\)", stream.getvalue())


def test_anywhere_but_a_terminal_it_writes_nothing():
    stream = io.StringIO()
    bar = ProgressBar("importing users", stream)
    bar.update(1, 2)
    bar.update(2, 2)
    bar.close()
    assert stream.getvalue() == "" and not bar.enabled
