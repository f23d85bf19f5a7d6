"""A submission's results: one row per task with its parameters and design features, the
Pareto front over chosen objectives and the best task per objective."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from portal.flows.features import FIELDS
from portal.models import Submission
from portal.results.pareto import best_per_objective, pareto_front, parse_objectives

#: Objectives used when none are given, kept only where some completed task measured them
#: (OpenLane 1 reports often lack power and post-route slack).
DEFAULT_OBJECTIVES = (
    "die_area_um2:min,cell_area_um2:min,power_total_w:min,setup_ws_ns:max,wirelength_um:min"
)
#: Feature columns shown by default (the rest stay in the JSON).
SUMMARY_FIELDS = (
    "die_area_um2",
    "cell_area_um2",
    "cell_count_synth",
    "cell_count_final",
    "utilization_pct",
    "setup_ws_ns",
    "hold_ws_ns",
    "power_total_w",
    "wirelength_um",
    "drc_magic",
    "lvs_errors",
    "runtime_seconds",
)


class ResultsError(ValueError):
    """Bad objectives."""


@dataclass
class ResultsTable:
    """Rows (task index, state, params, features) with Pareto membership and winners."""

    params: list[str]
    rows: list[dict[str, Any]]
    objectives: dict[str, str]
    pareto: list[int]
    best: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: rows carry ``pareto`` and ``best_for`` marks."""
        return {
            "objectives": self.objectives,
            "pareto": self.pareto,
            "best": self.best,
            "rows": [self._marked(i, row) for i, row in enumerate(self.rows)],
        }

    def _marked(self, position: int, row: dict[str, Any]) -> dict[str, Any]:
        return {
            **row,
            "pareto": row["index"] in self.pareto,
            "best_for": [name for name, index in self.best.items() if index == row["index"]],
        }

    def columns(self) -> list[str]:
        """Header of the CSV and text forms."""
        return ["index", "state", *self.params, *SUMMARY_FIELDS, "pareto", "best_for"]

    def records(self) -> list[list[Any]]:
        """Cells in :meth:`columns` order."""
        out = []
        for position, row in enumerate(self.rows):
            marked = self._marked(position, row)
            out.append(
                [row["index"], row["state"]]
                + [row["params"].get(p) for p in self.params]
                + [(row["metrics"] or {}).get(f) for f in SUMMARY_FIELDS]
                + ["*" if marked["pareto"] else "", " ".join(marked["best_for"])]
            )
        return out

    def to_csv(self) -> str:
        """CSV with units in the feature headers."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([_header(c) for c in self.columns()])
        writer.writerows(self.records())
        return buffer.getvalue()

    def to_text(self) -> str:
        """An aligned table for the terminal; '*' marks the Pareto front. Feature columns no
        task measured are left out (the CSV and JSON keep them)."""
        columns, records = self.columns(), self.records()
        keep = [
            i
            for i, name in enumerate(columns)
            if name not in SUMMARY_FIELDS or any(r[i] is not None for r in records)
        ]
        rows = [[_header(columns[i]) for i in keep]]
        rows += [["" if r[i] is None else _short(r[i]) for i in keep] for r in records]
        widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
        legend = ", ".join(f"{k} {v}" for k, v in self.objectives.items())
        return "\n".join([*lines, f"Pareto front (*) over: {legend}"])


def _header(column: str) -> str:
    spec = FIELDS.get(column)
    return f"{column} [{spec.unit}]" if spec and spec.unit else column


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def results_table(submission: Submission, objectives: str | None = None) -> ResultsTable:
    """Build the table for ``submission``; objectives like ``area:min,setup_ws:max``.

    Without objectives, :data:`DEFAULT_OBJECTIVES` that the finished tasks measured are used.
    """
    try:
        parsed = parse_objectives(objectives or DEFAULT_OBJECTIVES)
    except ValueError as exc:
        raise ResultsError(str(exc)) from None
    params: list[str] = []
    rows = []
    for task in submission.tasks:
        params.extend(p for p in task.params if p not in params)
        rows.append(
            {
                "index": task.index,
                "state": task.state,
                "exit_code": task.exit_code,
                "params": task.params,
                "metrics": task.metrics,
            }
        )
    scored = [(row["metrics"] or {}) if row["state"] == "COMPLETED" else {} for row in rows]
    if objectives is None:
        measured = {k: v for k, v in parsed.items() if any(r.get(k) is not None for r in scored)}
        if "die_area_um2" in measured:  # cell area counts where no floorplan ran
            measured.pop("cell_area_um2", None)
        parsed = measured or parsed
    front = [rows[i]["index"] for i in pareto_front(scored, parsed)]
    best = {name: rows[i]["index"] for name, i in best_per_objective(scored, parsed).items()}
    return ResultsTable(params, rows, dict(parsed), front, best)
