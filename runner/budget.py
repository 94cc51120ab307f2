"""Budget accounting with reservations that fail closed.

Every scope with limits (the run, and any node with a ``budget``) has a ledger chained to the
one around it. A model call reserves its worst case in every ledger up the chain before it
starts; if any would go over, nothing is reserved and the call does not happen. When the call
ends, its actual usage replaces the reservation. Pure bookkeeping: the executor owns the clock
(``wall_s`` is enforced by it as a deadline) and the event loop, which is single-threaded, so
no locks are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runner import ir


class BudgetExceeded(Exception):
    """A reservation that does not fit; says which limit of which scope."""

    def __init__(self, scope: str, metric: str, limit: float, needed: float) -> None:
        super().__init__(
            f"budget.{metric} of {scope} would be exceeded: {needed:g} needed, limit {limit:g}"
        )
        self.scope = scope
        self.metric = metric
        self.limit = limit
        self.needed = needed


@dataclass(frozen=True, slots=True, kw_only=True)
class Amount:
    """Tokens, dollars and leaf launches."""

    tokens: int = 0
    """Prompt plus completion tokens."""
    cost_usd: float = 0.0
    """Dollars."""
    leaves: int = 0
    """Model calls launched."""

    def __add__(self, other: Amount) -> Amount:
        return Amount(
            tokens=self.tokens + other.tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            leaves=self.leaves + other.leaves,
        )

    def __sub__(self, other: Amount) -> Amount:
        return Amount(
            tokens=self.tokens - other.tokens,
            cost_usd=self.cost_usd - other.cost_usd,
            leaves=self.leaves - other.leaves,
        )


@dataclass(slots=True)
class _Counts:
    """Running totals, changed in place: every model call adds to and takes from them."""

    tokens: int = 0
    cost_usd: float = 0.0
    leaves: int = 0

    def add(self, amount: Amount, sign: int = 1) -> None:
        self.tokens += sign * amount.tokens
        self.cost_usd += sign * amount.cost_usd
        self.leaves += sign * amount.leaves

    def amount(self) -> Amount:
        return Amount(tokens=self.tokens, cost_usd=self.cost_usd, leaves=self.leaves)


@dataclass(slots=True)
class Ledger:
    """Spending of one scope against its limits."""

    scope: str
    """What the limits belong to (``the run``, ``branch 'review'``), for messages."""
    limits: ir.Budget
    """The scope's limits; ``None`` fields are unlimited."""
    parent: Ledger | None = None
    """The enclosing scope's ledger."""
    _spent: _Counts = field(default_factory=_Counts, init=False, repr=False)
    _held: _Counts = field(default_factory=_Counts, init=False, repr=False)
    _chain: tuple[Ledger, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _only_leaves: bool | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def spent(self) -> Amount:
        """Actual usage of finished calls."""
        return self._spent.amount()

    @property
    def held(self) -> Amount:
        """Reservations of calls in flight."""
        return self._held.amount()

    @property
    def counts_only_leaves(self) -> bool:
        """Whether no ledger up the chain limits tokens or dollars: a call's worst case is
        then one leaf, whatever its prompt."""
        if self._only_leaves is None:
            self._only_leaves = all(
                scope.limits.tokens is None and scope.limits.cost_usd is None
                for scope in self.chain()
            )
        return self._only_leaves

    def chain(self) -> tuple[Ledger, ...]:
        """This ledger and every enclosing one, innermost first."""
        if self._chain is None:
            self._chain = (self, *(self.parent.chain() if self.parent is not None else ()))
        return self._chain

    def check(self, extra: Amount) -> None:
        """Raise BudgetExceeded if ``extra`` on top of what is spent and held does not fit."""
        limits, spent, held = self.limits, self._spent, self._held
        # Spelled out, not looped over: every model call checks every ledger up its chain.
        if limits.tokens is not None:
            used: float = spent.tokens + held.tokens + extra.tokens
            if used > limits.tokens + 1e-12:
                raise BudgetExceeded(self.scope, "tokens", limits.tokens, used)
        if limits.cost_usd is not None:
            used = spent.cost_usd + held.cost_usd + extra.cost_usd
            if used > limits.cost_usd + 1e-12:
                raise BudgetExceeded(self.scope, "cost_usd", limits.cost_usd, used)
        if limits.leaves is not None:
            used = spent.leaves + held.leaves + extra.leaves
            if used > limits.leaves + 1e-12:
                raise BudgetExceeded(self.scope, "leaves", limits.leaves, used)


@dataclass(slots=True)
class Reservation:
    """A worst case held in a chain of ledgers until the call ends."""

    ledger: Ledger
    """The innermost ledger it was taken from."""
    amount: Amount
    """What is held."""
    open: bool = True
    """Whether it still holds anything."""


def reserve(ledger: Ledger, worst: Amount) -> Reservation:
    """Hold ``worst`` in every ledger up the chain, or in none (fail closed)."""
    chain = ledger.chain()
    for scope in chain:
        scope.check(worst)
    for scope in chain:
        scope._held.add(worst)
    return Reservation(ledger=ledger, amount=worst)


def settle(reservation: Reservation, actual: Amount | None) -> None:
    """Replace the reservation by what the call actually used (``None``: nothing, e.g. it
    failed before the provider answered)."""
    if not reservation.open:
        raise ValueError("this reservation was already settled")
    reservation.open = False
    for scope in reservation.ledger.chain():
        scope._held.add(reservation.amount, -1)
        if actual is not None:
            scope._spent.add(actual)


def worst_case(
    prompt_tokens: int, max_tokens: int, input_per_mtok: float, output_per_mtok: float
) -> Amount:
    """The most a call can cost: its prompt plus ``max_tokens`` of reply, at the model's prices."""
    cost = (prompt_tokens * input_per_mtok + max_tokens * output_per_mtok) / 1_000_000
    return Amount(tokens=prompt_tokens + max_tokens, cost_usd=cost, leaves=1)
