"""CPU cost of the issue 12 checks on the write and filter paths, in microseconds per call.

    python -m bench.edge_costs

Pure Python, no database: what each request pays for the case fold of the view keys, the
NUL walk over a body, and the string caps, next to what the request costs in total
(``docs/benchmarks.md``: about 1 ms of gateway CPU per create).
"""

from __future__ import annotations

import statistics
import timeit

import orjson

from domain.identifiers import fold
from gateway.scim import bounds
from gateway.scim.filter import parse_filter
from gateway.scim.resource import parse_user
from projections.user_folding import folded_document
from tests.scim_client import entra_user


def _median_us(statement, number: int = 20_000, repeat: int = 5) -> float:
    runs = timeit.repeat(statement, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def main() -> None:
    body = entra_user("Ann.Smith@Example.com", "ann")
    raw = orjson.dumps(body)
    attributes, _ = parse_user(body)
    figures = {
        "fold(userName)": _median_us(lambda: fold("Ann.Smith@Example.com")),
        "folded_document(Entra create body)": _median_us(lambda: folded_document(attributes)),
        "bounds.no_nul(Entra create body), full walk": _median_us(lambda: bounds.no_nul(body)),
        "bounds.no_nul(Entra create body), as parse_json calls it": _median_us(lambda: bounds.no_nul(body, raw=raw)),
        "orjson.loads(Entra create body), for scale": _median_us(lambda: orjson.loads(raw)),
        "parse_user(Entra create body), caps included": _median_us(lambda: parse_user(body)),
        'parse_filter(userName eq "x")': _median_us(lambda: parse_filter('userName eq "ann@example.com"')),
    }
    width = max(len(k) for k in figures)
    for name, micros in figures.items():
        print(f"{name:<{width}}  {micros:7.2f} us")


if __name__ == "__main__":
    main()
