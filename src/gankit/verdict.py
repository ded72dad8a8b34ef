"""Where a GAN stands against the equilibrium of its game, read from D's mean outputs.

D(x) is the mean probability "real" that D gives real data, D(G(z)) the one it gives generated
data. At the equilibrium of the minimax game, G's distribution equals the data's and the best D
is 1/2 everywhere: D(x) = D(G(z)) = 1/2 (Goodfellow et al. 2014, Proposition 1 and Theorem 1).
``equilibrium`` is the one reading of those two numbers: ``gankit doctor``, the report and the
progress bar all use it, so they never disagree. Stdlib only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["D_AHEAD", "D_WINNING", "NEAR", "Verdict", "equilibrium"]

NEAR = 0.1  # D(x) and D(G(z)) both within this of 1/2: near the equilibrium
D_WINNING = 0.4  # D(x) - D(G(z)) above this: D separates real from fake with confidence
D_AHEAD = -0.1  # D(x) - D(G(z)) below this: D rates the fakes above the real data

_AT = "the equilibrium D(x) = D(G(z)) = 1/2 (Goodfellow et al. 2014)"


@dataclass(frozen=True)
class Verdict:
    """A reading of D(x) and D(G(z)): a short ``label`` (for a progress bar) and one ``sentence``
    (for people: ``gankit doctor``, the report)."""

    label: str
    sentence: str

    def __str__(self) -> str:
        return self.sentence


def equilibrium(d_real: float | None, d_fake: float | None) -> Verdict:
    """Read D's mean outputs on real data, D(x), and on generated data, D(G(z)).

    In this order:

    - either missing or not finite: not enough data yet;
    - both within ``NEAR`` (0.1) of 1/2: D can no longer tell real from fake, the equilibrium;
    - D(x) - D(G(z)) > ``D_WINNING`` (0.4): D is winning easily (G's gradient may be diminishing);
    - D(x) - D(G(z)) < ``D_AHEAD`` (-0.1): D rates the generated data above the real data;
    - otherwise: in between.
    """
    if d_real is None or d_fake is None or not math.isfinite(d_real) or not math.isfinite(d_fake):
        return Verdict("no data", "Not enough data yet to judge the equilibrium: D(x) and D(G(z)) "
                                  "have not been logged.")
    gap = d_real - d_fake
    if abs(d_real - 0.5) <= NEAR and abs(d_fake - 0.5) <= NEAR:
        return Verdict("near equilibrium",
                       f"D can no longer tell real from fake: D(x) = {d_real:.2f} and D(G(z)) = "
                       f"{d_fake:.2f} are both within {NEAR} of 1/2, near {_AT}.")
    if gap > D_WINNING:
        return Verdict("D winning",
                       f"D is winning easily: D(x) \u2212 D(G(z)) = {gap:.2f} > {D_WINNING}, far from "
                       f"{_AT}; D separates real from generated data with confidence and G's gradient "
                       "may be diminishing.")
    if gap < D_AHEAD:
        return Verdict("fakes rated higher",
                       f"D rates the generated data above the real data: D(x) \u2212 D(G(z)) = "
                       f"{gap:.2f} < {D_AHEAD}, away from {_AT}.")
    return Verdict("in between",
                   f"In between: D(x) \u2212 D(G(z)) = {gap:.2f}; D is neither winning easily nor "
                   f"at {_AT}.")
