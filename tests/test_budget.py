"""Budget reservations: the worst case is held up the chain, and a call that would not fit
never starts."""

from __future__ import annotations

import pytest

from runner import ir
from runner.budget import Amount, BudgetExceeded, Ledger, reserve, settle, worst_case


def chain() -> tuple[Ledger, Ledger]:
    run = Ledger("the run", ir.Budget(tokens=1000, cost_usd=1.0, leaves=3))
    node = Ledger("branch 'review'", ir.Budget(tokens=600), parent=run)
    return run, node


def test_worst_case_prices_prompt_and_max_tokens() -> None:
    amount = worst_case(prompt_tokens=200, max_tokens=100, input_per_mtok=1.0, output_per_mtok=4.0)
    assert amount == Amount(tokens=300, cost_usd=(200 * 1.0 + 100 * 4.0) / 1e6, leaves=1)


def test_reservation_is_held_in_every_enclosing_ledger_then_replaced_by_usage() -> None:
    run, node = chain()
    held = reserve(node, Amount(tokens=500, cost_usd=0.1, leaves=1))
    assert run.held == node.held == Amount(tokens=500, cost_usd=0.1, leaves=1)
    settle(held, Amount(tokens=120, cost_usd=0.01, leaves=1))
    assert run.held == node.held == Amount()
    assert run.spent == node.spent == Amount(tokens=120, cost_usd=0.01, leaves=1)


def test_a_call_that_would_overrun_fails_closed_and_holds_nothing() -> None:
    run, node = chain()
    reserve(node, Amount(tokens=500, leaves=1))
    with pytest.raises(BudgetExceeded) as caught:
        reserve(node, Amount(tokens=200, leaves=1))
    assert caught.value.scope == "branch 'review'"
    assert caught.value.metric == "tokens"
    assert "700 needed, limit 600" in str(caught.value)
    assert node.held.tokens == 500
    assert run.held.tokens == 500


def test_the_outer_limit_applies_to_inner_calls() -> None:
    _, node = chain()
    for _ in range(3):
        reserve(node, Amount(tokens=1, leaves=1))
    with pytest.raises(BudgetExceeded) as caught:
        reserve(node, Amount(tokens=1, leaves=1))
    assert (caught.value.scope, caught.value.metric) == ("the run", "leaves")


def test_released_reservations_free_room() -> None:
    _, node = chain()
    held = reserve(node, Amount(tokens=600))
    settle(held, None)
    reserve(node, Amount(tokens=600))
    with pytest.raises(ValueError, match="already settled"):
        settle(held, None)


def test_concurrent_reservations_never_exceed_the_limit() -> None:
    run = Ledger("the run", ir.Budget(cost_usd=0.05))
    granted = 0
    for _ in range(100):
        try:
            reserve(run, Amount(cost_usd=0.003))
            granted += 1
        except BudgetExceeded:
            break
    assert granted == 16
    assert run.held.cost_usd <= 0.05


def test_a_chain_that_limits_only_leaves_reserves_one_leaf_per_call() -> None:
    leaves_only = Ledger("branch 'b'", ir.Budget(leaves=2), parent=Ledger("the run", ir.Budget()))
    assert leaves_only.counts_only_leaves
    capped = Ledger(
        "branch 'b'", ir.Budget(leaves=2), parent=Ledger("the run", ir.Budget(tokens=5))
    )
    assert not capped.counts_only_leaves
    reserve(leaves_only, Amount(leaves=1))
    reserve(leaves_only, Amount(leaves=1))
    with pytest.raises(BudgetExceeded, match="leaves"):
        reserve(leaves_only, Amount(leaves=1))
