"""The server's admission policy on its own: slots, the line of waiting turns, refusals.

These drive ``Admission`` directly on an event loop (no sockets, no engine); the load test with
the real SDK is tests/test_server_sdk.py::test_an_overloaded_server_answers_or_refuses_each_client.
"""

from __future__ import annotations

import asyncio

import pytest

from voxflow.server import admission as admission_module
from voxflow.server.admission import Admission, Overloaded


def admission(recognitions: int = 2, wait: float = 5.0, sessions: int = 64) -> Admission:
    return Admission(max_sessions=sessions, max_recognitions=recognitions, max_queue_wait=wait)


async def test_turns_beyond_the_slots_wait_in_line_and_get_a_slot_as_one_frees() -> None:
    policy = admission(recognitions=2)
    tickets = [policy.connect() for _ in range(4)]
    order: list[int] = []
    release = [asyncio.Event() for _ in tickets]

    async def turn(i: int) -> None:
        async with tickets[i].recognition():
            order.append(i)
            await release[i].wait()

    tasks = []
    for i in range(4):
        tasks.append(asyncio.ensure_future(turn(i)))
        await asyncio.sleep(0)  # each asks in this order
    await asyncio.sleep(0.01)
    assert order == [0, 1] and policy.recognising == 2 and policy.waiting == 2
    release[1].set()
    await asyncio.sleep(0.01)
    assert order == [0, 1, 2]  # first come, first served
    for event in release:
        event.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3] and policy.recognising == 0 and policy.waiting == 0
    for ticket in tickets:
        ticket.close()
        ticket.close()  # idempotent
    assert policy.sessions == 0


async def test_a_turn_that_waits_past_the_bound_is_refused_and_leaves_the_line() -> None:
    policy = admission(recognitions=1, wait=0.2)
    first, second = policy.connect(), policy.connect()
    async with first.recognition():
        with pytest.raises(Overloaded, match=r"no recognition slot within 0\.2 s"):
            async with second.recognition():
                pass
        assert policy.waiting == 0
    assert policy.recognising == 0
    async with second.recognition():  # free again: it gets the slot at once
        assert policy.recognising == 1


async def test_connections_are_refused_by_the_wait_they_would_face() -> None:
    policy = admission(recognitions=2, wait=5.0)
    assert policy.refusal() is None and policy.expected_wait() == 0.0
    tickets = [policy.connect() for _ in range(4)]  # two would recognise, two wait
    # Nothing measured yet: the line holds at most one round of turns.
    assert policy.expected_wait() is None
    refusal = policy.refusal()
    assert refusal is not None and refusal.startswith("busy: 0 recognitions running and 4 waiting")
    for ticket in tickets:
        ticket.close()


async def test_once_measured_the_wait_is_rounds_of_the_measured_hold() -> None:
    policy = admission(recognitions=2, wait=0.25)
    ticket = policy.connect()
    async with ticket.recognition():
        await asyncio.sleep(0.1)
    ticket.close()
    tickets = [policy.connect()]
    assert policy.expected_wait() == 0.0  # a newcomer gets the second slot
    tickets.append(policy.connect())
    hold = policy.expected_wait()  # both slots spoken for: one round of the measured hold
    assert hold is not None and hold >= 0.1
    for admitted, rounds in ((3, 1), (4, 2), (5, 2), (6, 3)):
        while len(tickets) < admitted:
            tickets.append(policy.connect())
        wait = policy.expected_wait()
        assert wait == pytest.approx(rounds * hold), admitted
        assert (policy.refusal() is None) == (wait <= 0.25), admitted
    assert policy.refusal() is not None  # three rounds of at least 0.1 s: over the bound


async def test_the_measured_hold_follows_real_recognitions() -> None:
    policy = admission(recognitions=1)
    ticket = policy.connect()
    async with ticket.recognition():
        await asyncio.sleep(0.1)
    policy.connect()
    policy.connect()  # one would recognise, the other waits one round
    wait = policy.expected_wait()
    assert wait is not None and 0.1 <= wait < 1.0


async def test_the_session_limit_and_shutdown_refuse_and_wake_the_line() -> None:
    policy = admission(recognitions=1, wait=30.0, sessions=2)
    first, second = policy.connect(), policy.connect()
    assert policy.refusal() == "too many sessions; retry later"
    async with first.recognition():
        waiting = asyncio.ensure_future(second.recognition().__aenter__())
        await asyncio.sleep(0.01)
        policy.close()
        with pytest.raises(Overloaded, match="shutting down"):
            await asyncio.wait_for(waiting, 1)  # at once, not after the 30 s bound
    assert policy.refusal() == "the server is shutting down"


async def test_a_slot_handed_to_a_turn_that_was_cancelled_passes_on() -> None:
    policy = admission(recognitions=1)
    holder, quitter, next_in_line = policy.connect(), policy.connect(), policy.connect()
    entered = asyncio.Event()

    async def wait_then_hold(ticket) -> None:  # type: ignore[no-untyped-def]
        async with ticket.recognition():
            entered.set()

    async with holder.recognition():
        quitting = asyncio.ensure_future(wait_then_hold(quitter))
        await asyncio.sleep(0)
        following = asyncio.ensure_future(wait_then_hold(next_in_line))
        await asyncio.sleep(0.01)
    quitting.cancel()  # in the same step as the slot was handed to it
    with pytest.raises(asyncio.CancelledError):
        await quitting
    await asyncio.wait_for(following, 1)
    assert entered.is_set() and policy.recognising == 0


async def test_connections_that_idle_stop_counting_as_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that connects and sends nothing must not make the server refuse others."""
    monkeypatch.setattr(admission_module, "FRESH_SECONDS", 0.05)
    policy = admission(recognitions=1)
    idle = [policy.connect() for _ in range(3)]
    assert policy.waiting == 3 and policy.refusal() is not None
    await asyncio.sleep(0.1)
    assert policy.waiting == 0 and policy.refusal() is None
    async with idle[0].recognition():  # an idle connection may still start a turn later
        assert policy.recognising == 1
