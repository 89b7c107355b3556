"""The consistent hash ring: order independence, minimal movement, updates."""

import random
import uuid

import pytest

from mn.ids import new_uuid
from mn.ring import EmptyRingError, Ring

_rng = random.Random(7)


def _uuid() -> str:
    """A deterministic ZStack-style uuid (uuid4 hex)."""
    return uuid.UUID(int=_rng.getrandbits(128), version=4).hex


NODES = [_uuid() for _ in range(5)]
KEYS = [_uuid() for _ in range(2000)]


def owners(ring: Ring) -> dict[str, str]:
    return {key: ring.owner(key) for key in KEYS}


def test_owner_does_not_depend_on_node_order():
    expected = owners(Ring(NODES))
    rng = random.Random(42)
    for _ in range(5):
        shuffled = NODES[:]
        rng.shuffle(shuffled)
        assert owners(Ring(shuffled)) == expected
    # The same set given with duplicates and through update() in another order.
    ring = Ring()
    ring.update(list(reversed(NODES)) + NODES[:2])
    assert owners(ring) == expected


def test_every_node_owns_something_and_owner_is_a_member():
    result = owners(Ring(NODES))
    assert set(result.values()) == set(NODES)


def test_removing_a_node_moves_only_its_keys():
    ring = Ring(NODES)
    before = owners(ring)
    removed = NODES[2]
    assert ring.update([n for n in NODES if n != removed]) is True
    after = owners(ring)
    moved = {key for key in KEYS if before[key] != after[key]}
    # Exactly the removed node's keys moved, and none of them to the removed node.
    assert moved == {key for key in KEYS if before[key] == removed}
    assert moved, "the removed node owned no key; the test proves nothing"
    assert removed not in after.values()


def test_adding_a_node_moves_keys_only_to_it():
    ring = Ring(NODES[:4])
    before = owners(ring)
    ring.update(NODES)
    after = owners(ring)
    for key in KEYS:
        assert after[key] in (before[key], NODES[4])
    assert NODES[4] in after.values()


def test_rebuilding_after_remove_and_readd_restores_owners():
    ring = Ring(NODES)
    before = owners(ring)
    ring.update(NODES[1:])
    ring.update(NODES)
    assert owners(ring) == before


def test_empty_ring_raises():
    with pytest.raises(EmptyRingError):
        Ring().owner(new_uuid())
    ring = Ring(["n1"])
    assert ring.owner(new_uuid()) == "n1"
    ring.update([])
    with pytest.raises(EmptyRingError):
        ring.owner(new_uuid())
    assert issubclass(EmptyRingError, LookupError)


def test_update_returns_whether_the_set_changed():
    ring = Ring()
    assert ring.update(["a", "b"]) is True
    assert ring.update(["b", "a"]) is False          # same set, other order
    assert ring.update(["a", "b", "a"]) is False     # duplicates do not count
    assert ring.update(("a", "b", "c")) is True
    assert ring.nodes == ("a", "b", "c")
    assert ring.update([]) is True
    assert ring.update([]) is False
    assert len(ring) == 0


def test_membership_and_len():
    ring = Ring(["x", "y"])
    assert "x" in ring and "y" in ring and "z" not in ring
    assert len(ring) == 2
    assert ring.nodes == ("x", "y")
