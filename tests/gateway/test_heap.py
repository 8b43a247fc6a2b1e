"""``heap.settle``: what a process made before it is out of every later collection's walk."""

import gc

from gateway import heap


def test_settle_freezes_what_exists_and_leaves_what_comes_after_to_the_collector():
    made_before = [object() for _ in range(3)]
    frozen_before = gc.get_freeze_count()
    try:
        heap.settle()
        assert gc.get_freeze_count() > frozen_before
        walked = {id(o) for o in gc.get_objects()}
        assert id(made_before) not in walked
        made_after: list[object] = []
        assert id(made_after) in {id(o) for o in gc.get_objects()}
    finally:
        gc.unfreeze()
