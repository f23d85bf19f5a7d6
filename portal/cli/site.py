"""``portal poll``, ``portal reports``, ``portal config`` and ``portal mail``: the portal host's
own jobs and the designer's offline checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask

from portal.cli.common import fail, with_app

if TYPE_CHECKING:
    pass


@click.command()
@click.option("--once", is_flag=True, help="run one cycle and exit")
@with_app
def poll(app: Flask, once: bool) -> None:
    """Follow Slurm: one sacct call per cycle for every unfinished task."""
    from portal.cluster.connect import slurm_client
    from portal.submit.background import HandOver
    from portal.track.pollstats import RecordingPoller

    poller = RecordingPoller(app, slurm_client(app.config), hand_over=HandOver(app))
    if once:
        try:
            stats = poller.run_cycle()
        finally:
            poller.stop()  # one cycle: leave the lease to the next poller at once
        if stats is None:
            click.echo("another poller holds the lease, or Slurm did not answer", err=True)
            sys.exit(1)
        click.echo(json.dumps(stats.__dict__))
        return
    from portal.track.scheduler import run_forever

    run_forever(app, poller)


@click.group()
def reports() -> None:
    """OpenLane report files."""


@reports.command("parse")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def reports_parse(path: Path, as_json: bool) -> None:
    """Parse a metrics.csv, a metrics.json or a run folder into design features."""
    from portal.flows.reports import parse_path

    try:
        records = parse_path(path)
    except (ValueError, OSError) as exc:
        fail(f"{path}: {exc}")
    if not records:
        fail(f"{path}: no OpenLane reports found")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2, default=str))
        return
    for record in records:
        click.echo(_features_text(record.to_dict(include_raw=False)))


def _features_text(features: dict[str, Any]) -> str:
    from portal.flows.features import FIELDS

    lines = [
        f"{features.get('design') or '?'} ({features.get('flow')}, {features.get('flow_status')})"
    ]
    for name, spec in FIELDS.items():
        value = features.get(name)
        if value is not None and name not in ("design", "flow", "flow_status"):
            unit = f" {spec.unit}" if spec.unit else ""
            lines.append(f"  {spec.label:<28} {value}{unit}")
    return "\n".join(lines)


@click.group()
def config() -> None:
    """Design configurations."""


@config.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pdk", default="sky130A", show_default=True)
@click.option("--scl", default="sky130_fd_sc_hd", show_default=True)
@click.option(
    "--flow",
    default="openlane1",
    show_default=True,
    type=click.Choice(["openlane1", "openlane2", "librelane"]),
)
@click.option("--json", "as_json", is_flag=True)
def config_check(path: Path, pdk: str, scl: str, flow: str, as_json: bool) -> None:
    """Validate a design config (config.json / config.tcl / config.yaml)."""
    from portal.flows.designconfig import check_config

    report = check_config(path, pdk=pdk, scl=scl, flow=flow)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(_report_text(path, report.to_dict()))
    sys.exit(1 if report.errors else 0)


def _report_text(path: Path, report: dict[str, Any]) -> str:
    lines = [
        f"{path}: {len(report.get('known', []))} known, {len(report.get('unknown', []))} "
        f"unknown, {len(report.get('deprecated', []))} deprecated variable(s)"
    ]
    for kind in ("errors", "warnings"):
        for item in report.get(kind, []):
            line, message = _issue(item)
            where = f"line {line}: " if line else ""
            lines.append(f"  {kind[:-1]}: {where}{message}")
    return "\n".join(lines)


def _issue(item: Any) -> tuple[Any, str]:
    if isinstance(item, dict):
        return item.get("line"), str(item.get("message"))
    if isinstance(item, list | tuple) and len(item) == 2:
        return item[0], str(item[1])
    return None, str(item)


@click.group()
def mail() -> None:
    """Outgoing email."""


@mail.command("flush")
@with_app
def mail_flush(app: Flask) -> None:
    """Send every queued message now, ignoring backoff."""
    from portal.mail.outbox import flush_outbox

    click.echo(json.dumps(flush_outbox()))


#: Settings whose values are secrets: ``portal settings`` shows only whether they are set.
SECRET_SETTINGS = ("SECRET_KEY", "MAIL_PASSWORD", "METRICS_TOKEN", "SQLALCHEMY_DATABASE_URI")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@with_app
def settings(app: Flask, as_json: bool) -> None:
    """Every setting: its effective value (secrets hidden) and what it does."""
    from portal.config import DOCS, settings_of

    values = settings_of(app).model_dump(include=set(DOCS))
    for name in SECRET_SETTINGS:
        values[name] = "(set)" if values.get(name) else "(not set)"
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    for name, value in values.items():
        click.echo(f"{name} = {json.dumps(value, default=str)}\n    {DOCS[name]}")
