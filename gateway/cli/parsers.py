"""The option groups every command family builds its parsers from."""

from __future__ import annotations

import argparse
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parents:
    # --database-url and --data-dir: every command that reaches the database.
    common: argparse.ArgumentParser
    # --json: only commands that honour it take it.
    json: argparse.ArgumentParser

    def data(self) -> list[argparse.ArgumentParser]:
        return [self.common, self.json]
