"""engine.team.identity: every id of a user derived in one place."""

from __future__ import annotations

from engine.team.identity import LOCAL, Identity


def test_the_single_user_keeps_the_ids_it_always_had():
    single = Identity()
    assert single.user == LOCAL
    assert single.session_id("proj") == Identity(LOCAL).session_id("proj")
    # The ids of "no user" (what routers have seen from stdio daemons all along).
    from engine.team.identity import session_id, user_id

    assert single.session_id("proj") == session_id(None, "proj")
    assert single.user_key == user_id(None)


def test_team_ids_are_keyed_distinct_and_stable():
    key = b"k" * 32
    alice, bob = Identity("alice", key), Identity("bob", key)
    assert alice.session_id("proj") == Identity("alice", key).session_id("proj")
    assert alice.session_id("proj") != bob.session_id("proj")
    assert alice.session_id("proj") != alice.session_id("other")
    assert alice.user_key != alice.session_id(None)  # its own person: never a session id
    assert alice.session_id("proj") != Identity("alice", b"x" * 32).session_id("proj")
    assert alice.cache_salt != bob.cache_salt
    team = [Identity(user, key, "team").cache_salt for user in ("alice", "bob")]
    assert team[0] == team[1] != alice.cache_salt
    assert "alice" not in alice.cache_salt + alice.user_key + alice.session_id("proj")
