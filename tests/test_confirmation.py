"""The confirmed drift state machine: hysteresis in calculations and window turnover, persistence."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from monitor_service.confirmation import ConfirmationSettings, ConfirmationState, Observation, update

NO_TURNOVER = ConfirmationSettings(confirm=3, clear=2, turnover=False)


def _run(
    raws: list[bool | None], settings: ConfirmationSettings, slide: float = 1.0, window: float = 1.0
) -> list[bool]:
    """Feed raw dataset verdicts; calculation i sees rows that arrived in (i*slide - window, i*slide]."""
    state = ConfirmationState()
    out = []
    for i, raw in enumerate(raws):
        newest = i * slide
        state = update(state, Observation(raw, {}, newest - window + 0.5, newest), settings)
        out.append(state.dataset.confirmed)
    return out


def test_confirmation_turns_on_after_confirm_and_off_after_clear_calculations() -> None:
    raws: list[bool | None] = [True, True, False, True, True, True, True, False, True, False, False, False]
    assert _run(raws, NO_TURNOVER) == [
        False, False, False, False, False, True, True, True, True, True, False, False,
    ]  # fmt: skip


def test_confirmation_ignores_calculations_without_a_verdict() -> None:
    assert _run([True, None, True, None, True], NO_TURNOVER) == [False, False, False, False, True]


def test_confirm_one_is_the_raw_verdict() -> None:
    raws: list[bool | None] = [True, False, True, True, False]
    settings = ConfirmationSettings(confirm=1, clear=1, turnover=True)
    assert _run(raws, settings, slide=1, window=100) == [True, False, True, True, False]


def test_turnover_holds_a_streak_until_the_first_window_has_left() -> None:
    """Window of 10 slides: a raw drift held for 5 calculations (one excursion of overlapping windows)
    is not confirmed; held for 11 it is, at the first calculation whose rows are all newer."""
    settings = ConfirmationSettings(confirm=3, clear=3, turnover=True)
    assert not any(_run([True] * 5 + [False] * 10, settings, slide=1, window=10))
    confirmed = _run([True] * 15, settings, slide=1, window=10)
    assert confirmed.index(True) == 10  # oldest row of calculation 10 arrived after the newest of 0


def test_turnover_is_immediate_when_windows_do_not_overlap() -> None:
    settings = ConfirmationSettings(confirm=3, clear=3, turnover=True)
    assert _run([True] * 4, settings, slide=10, window=10) == [False, False, True, True]


def test_columns_are_confirmed_independently_and_kept_when_absent() -> None:
    state = ConfirmationState()
    for _ in range(3):
        state = state.update(Observation(False, {"a": True, "b": False}), NO_TURNOVER)
    state = state.update(Observation(False, {"b": True}), NO_TURNOVER)  # "a" not tested this time
    assert state.columns["a"].confirmed and not state.columns["b"].confirmed
    assert state.columns["b"].streak == 1
    assert state.calculations == 4


def test_state_round_trips_through_json() -> None:
    state = ConfirmationState()
    for raw in (True, True, False, True):
        state = state.update(Observation(raw, {"a": raw, "b": not raw}, 1.0, 2.0), NO_TURNOVER)
    restored = ConfirmationState.from_dict(json.loads(json.dumps(state.as_dict())))
    assert restored == state
    assert restored.update(Observation(True, {"a": True}, 3.0, 4.0), NO_TURNOVER) == state.update(
        Observation(True, {"a": True}, 3.0, 4.0), NO_TURNOVER
    )


@given(
    raws=st.lists(st.one_of(st.none(), st.booleans()), max_size=60),
    confirm=st.integers(1, 5),
    clear=st.integers(1, 5),
)
def test_confirmed_changes_only_after_a_long_enough_streak(
    raws: list[bool | None], confirm: int, clear: int
) -> None:
    settings = ConfirmationSettings(confirm, clear, turnover=False)
    confirmed = _run(raws, settings)
    previous = False
    for index, value in enumerate(confirmed):
        if value != previous:  # a change: the last `needed` verdicts all agreed with the new value
            needed = confirm if value else clear
            recent = [r for r in raws[: index + 1] if r is not None][-needed:]
            assert len(recent) == needed and all(r == value for r in recent)
        previous = value
    tail = [r for r in raws if r is not None][-max(confirm, clear) :]
    if len(tail) == max(confirm, clear) and len(set(tail)) == 1:  # a long enough agreement at the end
        assert confirmed[-1] == tail[0]
