"""What every benchmark returns: a measurement held against its budget, printed as one line."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Result:
    """``measured`` and ``budget`` in the same unit; ``ratio`` = measured / budget (≤ 1 passes)."""

    name: str
    measured: float
    budget: float
    unit: str
    shown: str = ""  # how to print the measurement, when the number alone says too little
    details: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.measured / self.budget if self.budget else float("inf")

    @property
    def verdict(self) -> str:
        return "PASS" if self.ratio <= 1.0 else "OVER"

    def line(self) -> str:
        measured = self.shown or f"{_num(self.measured)} {self.unit}"
        budget = f"{_num(self.budget)} {self.unit}"
        return (f"{self.name:<13} measured {measured:<48} budget {budget:<13} "
                f"ratio {self.ratio:5.3f}  {self.verdict}")


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or float(value).is_integer() else f"{value:.2f}"


def section(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


def say(text: str = "") -> None:
    print(f"   {text}" if text else "", flush=True)
