"""Design-space exploration helpers: Pareto fronts and per-objective bests over feature rows.

A row is any mapping of field name -> number (``DesignFeatures.numeric()``, a database row as a
dict, ...). A row whose value for any objective is missing, None, non-numeric or NaN takes no
part. Point ``a`` dominates ``b`` when it is at least as good on every objective and strictly
better on one, so identical points never dominate each other: all of them stay on the front.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Literal

from portal.flows.features import FIELDS, resolve_field

Direction = Literal["min", "max"]
Row = Mapping[str, object]
Objectives = Mapping[str, Direction]

_DIRECTIONS = ("min", "max")


def _number(value: object) -> float | None:
    """A comparable float, or None for missing / boolean / non-numeric / NaN values."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real | Decimal):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _check_objectives(objectives: Objectives) -> None:
    if not objectives:
        raise ValueError("at least one objective is needed")
    for name, direction in objectives.items():
        if direction not in _DIRECTIONS:
            raise ValueError(f"objective {name!r}: direction must be 'min' or 'max'")


def _points(rows: Sequence[Row], objectives: Objectives) -> list[tuple[tuple[float, ...], int]]:
    """(minimization vector, row index) of every row that has all objectives."""
    signs = [1.0 if direction == "min" else -1.0 for direction in objectives.values()]
    points = []
    for index, row in enumerate(rows):
        vector = []
        for sign, name in zip(signs, objectives, strict=True):
            value = _number(row.get(name))
            if value is None:
                break
            vector.append(sign * value)
        else:
            points.append((tuple(vector), index))
    return points


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a != b and all(x <= y for x, y in zip(a, b, strict=True))


def _front_one(points: list[tuple[tuple[float, ...], int]]) -> list[int]:
    best = min(vector for vector, _ in points)
    return [index for vector, index in points if vector == best]


def _front_two(points: list[tuple[tuple[float, ...], int]]) -> list[int]:
    """Sweep by the first objective; a group is kept where it improves the second."""
    points.sort()
    front: list[int] = []
    best_second: float | None = None
    for _, group in groupby(points, key=lambda p: p[0][0]):
        members = list(group)
        group_best = members[0][0][1]  # sorted, so the group's smallest second objective
        if best_second is None or group_best < best_second:
            front.extend(index for vector, index in members if vector[1] == group_best)
            best_second = group_best
    return front


def _front_many(points: list[tuple[tuple[float, ...], int]]) -> list[int]:
    """Lexicographic order: a point can only be dominated by one before it (O(n * front))."""
    points.sort()
    front: list[tuple[tuple[float, ...], int]] = []
    for vector, index in points:
        if not any(_dominates(kept, vector) for kept, _ in front):
            front.append((vector, index))
    return [index for _, index in front]


def pareto_front(rows: Sequence[Row], objectives: Objectives) -> list[int]:
    """Indices (ascending) of the rows no other row dominates under ``objectives``.

    ``objectives`` maps a row key to ``"min"`` or ``"max"``. Rows lacking any objective are
    left out; equal points are all kept. Sort-based for one or two objectives
    (O(n log n)); O(n * front size) for more.
    """
    _check_objectives(objectives)
    points = _points(rows, objectives)
    if not points:
        return []
    if len(objectives) == 1:
        front = _front_one(points)
    elif len(objectives) == 2:
        front = _front_two(points)
    else:
        front = _front_many(points)
    return sorted(front)


def best_per_objective(rows: Sequence[Row], objectives: Objectives) -> dict[str, int]:
    """For each objective, the index of the best row (the lowest index on ties).

    Objectives no row has a value for are absent from the result.
    """
    _check_objectives(objectives)
    best: dict[str, int] = {}
    for name, direction in objectives.items():
        sign = 1.0 if direction == "min" else -1.0
        candidates = [
            (sign * value, index)
            for index, row in enumerate(rows)
            if (value := _number(row.get(name))) is not None
        ]
        if candidates:
            best[name] = min(candidates)[1]
    return best


def parse_objectives(spec: str) -> dict[str, Direction]:
    """Parse ``"area:min,power:min,setup_wns:max"`` into ``{field: direction}``.

    Names are feature fields or their aliases (see ``portal.flows.features``) and come back
    canonical (``area`` -> ``die_area_um2``). A name without ``:direction`` takes the field's
    catalogued better direction. Raises ``ValueError`` for an unknown or non-numeric field, a
    bad or missing direction, a repeated field, or an empty spec.
    """
    objectives: dict[str, Direction] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, direction = (part.strip().lower() for part in item.partition(":"))
        field = _objective_field(name)
        if not sep:
            better = FIELDS[field].better
            if better is None:
                raise ValueError(f"{name!r} has no default direction; write {name}:min or :max")
            direction = better
        if direction not in _DIRECTIONS:
            raise ValueError(f"{item!r}: direction must be 'min' or 'max', not {direction!r}")
        if field in objectives:
            raise ValueError(f"{item!r}: objective {field!r} given twice")
        objectives[field] = "min" if direction == "min" else "max"
    if not objectives:
        raise ValueError("no objectives given (expected e.g. 'area:min,setup_wns:max')")
    return objectives


def _objective_field(name: str) -> str:
    try:
        field = resolve_field(name)
    except KeyError as error:
        raise ValueError(error.args[0]) from None
    if not FIELDS[field].numeric:
        raise ValueError(f"{name!r} is not a numeric feature and cannot be an objective")
    return field
