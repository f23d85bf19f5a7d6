"""Resource checks of a plan: every refusal names the request field it is about, so the form
shows it at that field without reading its words."""

from __future__ import annotations

import re

import pytest

from portal.errors import SubmissionError
from portal.slurm.commands import Node, Partition, SinfoReport
from portal.submit import Resources, check_resources

REPORT = SinfoReport(
    partitions=(Partition("debug", True, "up", 60, ("n1",), 4, 8000),),
    nodes=(Node("n1", "idle", "", 4, 0, 8000, ("debug",)),),
)


class Cluster:
    """Answers ``sinfo`` with one partition of one 4-CPU, 8000 MB node, 60 min at most."""

    def sinfo(self) -> SinfoReport:
        return REPORT


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        (Resources(cpus=0), "cpus", "cpus must be a positive whole number"),
        (Resources(mem_mb=-1), "mem_mb", "mem_mb must be"),
        (Resources(time_minutes=True), "time_minutes", "time_minutes must be"),  # type: ignore[arg-type]
        (Resources(throttle=-2), "throttle", "throttle must be 0"),
        (Resources(partition="bad name"), "partition", "must be a Slurm name"),
        (Resources(account="x;y"), "account", "must be a Slurm name"),
        (Resources(partition="gpu"), "partition", "unknown partition 'gpu'"),
        (Resources(time_minutes=61), "time_minutes", "above partition debug's maximum"),
        (Resources(cpus=5), "cpus", "more than any node of partition debug has (4)"),
        (Resources(mem_mb=8001), "mem_mb", "more than any node of partition debug has"),
    ],
)
def test_each_refusal_names_its_field(resources: Resources, field: str, words: str) -> None:
    with pytest.raises(SubmissionError, match=re.escape(words)) as caught:
        check_resources(resources, {}, Cluster())  # type: ignore[arg-type]
    assert caught.value.field == field


def test_resources_within_the_limits_pass_with_site_defaults_filled_in() -> None:
    checked, error = check_resources(
        Resources(cpus=4, mem_mb=8000, time_minutes=60),
        {"SLURM_DEFAULT_ACCOUNT": "chips", "SLURM_ARRAY_THROTTLE": 3},
        Cluster(),  # type: ignore[arg-type]
    )
    assert error is None
    assert (checked.partition, checked.account, checked.throttle) == (None, "chips", 3)
