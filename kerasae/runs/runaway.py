"""Telling a loss term that ran away from a learning rate that is too large.

A step too large blows the loss up; a term that can fall forever (a penalty whose sign
is flipped, a weight that outweighs the rest) drags the loss down without bound, until
it too ends in inf or NaN. The remedies differ, so the messages must: `runaway_term`
names the term that fell without bound when training diverges (`NaNGuard`), and
`falls_without_bound` lets `kerasae.testing.check_model` warn about such a term over a
short fit. Pure Python: no TensorFlow.
"""

import math

#: a term this many times its starting size below its start has run away
RUNAWAY = 1e6
#: the least size a term is measured against (a term that starts at 0)
FLOOR = 1e-3


def runaway_term(start, last):
    """(name, start, last) of the term in `last` ({name: value}, the last finite values
    logged) that fell furthest below its value in `start`, relative to its size, when it
    fell by more than RUNAWAY times that size; None when none did. The total "loss" is
    a candidate only when no other term is."""
    found = []
    for name, value in last.items():
        first = start.get(name)
        if first is None or not (math.isfinite(first) and math.isfinite(value)):
            continue
        scale = max(abs(first), FLOOR)
        if value < first - RUNAWAY * scale:
            found.append((name == "loss", value / scale, name, first, value))
    return min(found)[2:] if found else None


def runaway_message(term):
    """The part of a divergence message that names the term (from `runaway_term`)."""
    name, first, last = term
    return (
        f"its term {name!r} fell without bound, from {first:.3g} to {last:.3g}: a term that "
        "can fall forever (a flipped sign, or a weight that outweighs the rest) is the "
        "likely cause, not the learning rate"
    )


def falls_without_bound(values):
    """True when a term's values (one per epoch) fall at every epoch, below zero, with
    no sign of slowing down (the last fall at least as large as the first): a term that
    converges falls ever more slowly, and a loss term bounded below stays above zero."""
    values = [float(v) for v in values]
    if len(values) < 3 or not all(math.isfinite(v) for v in values):
        return False
    falls = [a - b for a, b in zip(values, values[1:])]
    return values[-1] < 0 and all(f > 0 for f in falls) and falls[-1] >= falls[0]
