"""hub.platform.memory: facts shared by the processes of one connector, where the newer fact wins."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from hub.kernel.clock import utcnow
from hub.platform.memory import Learnt, Memory


def test_newer_facts_win_and_a_read_keeps_what_was_learnt_while_it_ran(engine: Engine) -> None:
    memory, other = Memory(engine, "allegro-main"), Memory(engine, "allegro-other")
    t0 = utcnow()
    memory.remember("t", {"a": Learnt("ENDED", t0), "b": Learnt("ENDED", t0)})
    other.remember("t", {"a": Learnt("x", t0)})
    memory.remember("t", {"a": Learnt(None, t0 + timedelta(seconds=2))}, newer_only=True)  # activated
    memory.remember("t", {"a": Learnt("ENDED", t0 + timedelta(seconds=1))}, newer_only=True)  # an older read
    assert memory.recall("t", ["a"]) == {"a": Learnt(None, t0 + timedelta(seconds=2))}
    memory.remember("t", {"a": Learnt("ENDED", t0 + timedelta(seconds=1))})  # without newer_only it replaces
    assert memory.recall("t", ["a", "zzz"])["a"].value == "ENDED"
    # a read that started at t0+1s and found nothing: "b" (older) goes, "c" learnt meanwhile stays
    memory.remember("t", {"c": Learnt("ENDED", t0 + timedelta(seconds=3))})
    assert memory.forget_except("t", [], learnt_before=t0 + timedelta(seconds=1)) == 1
    assert set(memory.recall("t")) == {"a", "c"}
    assert other.recall("t") == {"a": Learnt("x", t0)}  # another connector's facts are its own
