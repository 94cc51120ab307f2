"""The unscripted mock judge: its scores lie in the range the judge prompt states."""

from __future__ import annotations

import asyncio

import pytest

from runner.compiler.schema import load_schema
from runner.providers.base import ChatMessage, ModelRequest
from runner.providers.mock import MockProvider
from runner.providers.scores import DEFAULT_RANGE, ScoreRange, score_range
from runner.selection import JUDGE_SCHEMA, parse_score


@pytest.mark.parametrize(
    ("prompt", "low", "high", "whole"),
    [
        ("Score the summary from 0 to 10. Reply with the number only.", 0, 10, True),
        ("Rate it 1-5.", 1, 5, True),
        ("Rate each answer on a 1\N{EN DASH}5 scale.", 1, 5, True),
        ("Give a score between 0 and 1.", 0, 1, False),
        ("score 0..100", 0, 100, True),
        ("Give it a score out of 100.", 0, 100, True),
        ("Give a 1-5 rating.", 1, 5, True),
        ("On a scale of 1 to 7, how clear is it?", 1, 7, True),
        ("Score between 0.5 and 2.5", 0.5, 2.5, False),
        ("Lines 3-7 changed in 2024-12. Score it from 1 to 10.", 1, 10, True),
    ],
)
def test_the_range_is_read_from_the_prompt(
    prompt: str, low: float, high: float, whole: bool
) -> None:
    assert score_range(prompt) == ScoreRange(low=low, high=high, whole=whole)


def test_a_prompt_stating_no_range_scores_from_0_to_10() -> None:
    assert score_range("Which summary is better? {{ candidate }}") == DEFAULT_RANGE
    assert ScoreRange(low=0, high=10, whole=True) == DEFAULT_RANGE
    assert score_range("score from 10 to 0") == DEFAULT_RANGE  # not a range: high first


def _judged(prompt: str, candidates: int = 30) -> list[float]:
    provider = MockProvider()

    async def run() -> list[float]:
        replies = []
        for index in range(candidates):
            content = f"{prompt}\n\nCandidate: summary number {index}"
            one = ModelRequest(
                node_id=f"best/judge[{index}]",
                role="judge",
                model=None,
                messages=(ChatMessage(role="user", content=content),),
                output_schema=JUDGE_SCHEMA,
            )
            replies.append(parse_score((await provider.complete(one)).text))
        return replies

    return asyncio.run(run())


def test_unscripted_judges_score_whole_numbers_in_the_stated_range() -> None:
    scores = _judged("Score the candidate from 0 to 10.")
    assert all(score in range(11) for score in scores), scores
    assert len(set(scores)) > 3  # spread over the range, not one value
    assert scores == _judged("Score the candidate from 0 to 10.")  # deterministic


def test_unscripted_judges_score_fractions_between_0_and_1() -> None:
    scores = _judged("Rate the candidate between 0 and 1.")
    assert all(0 <= score <= 1 and round(score, 2) == score for score in scores), scores
    assert len(set(scores)) > 3


def test_unscripted_judges_of_a_prompt_without_a_range_score_from_0_to_10() -> None:
    scores = _judged("Which is better?")
    assert all(score in range(11) for score in scores), scores


def test_the_mock_script_reference_states_the_default_range() -> None:
    sections = load_schema("mock-script.schema.json")["x-sections"]
    (text,) = [s["text"] for s in sections if s["title"] == "Judge scores without a script"]
    low, high = int(DEFAULT_RANGE.low), int(DEFAULT_RANGE.high)
    assert f"as if it said `score from {low} to {high}`" in " ".join(text)
