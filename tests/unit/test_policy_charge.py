"""Which Slurm accounts and QOS a designer may charge (issue: the API let anyone charge root)."""

from __future__ import annotations

import pytest

from portal.slurm.commands import associations_argv, parse_associations
from portal.submit.approval import ChargeGrant, charge_grant, check_charge


def test_the_portal_grants_the_users_account_else_the_site_default():
    assert charge_grant("openlane", {}) == ChargeGrant(("openlane",), ())
    assert charge_grant(None, {"SLURM_DEFAULT_ACCOUNT": "lab"}).accounts == ("lab",)
    assert charge_grant("mine", {"SLURM_DEFAULT_ACCOUNT": "lab"}).accounts == ("mine",)
    assert charge_grant(None, {}).accounts == ()
    assert charge_grant(None, {"SLURM_ALLOWED_QOS": ["normal", "low"]}).qos == ("low", "normal")


def test_associations_add_their_accounts_and_qos():
    grant = charge_grant("openlane", {}, {"chipgroup": ("high", "normal"), "openlane": ()})
    assert grant == ChargeGrant(("chipgroup", "openlane"), ("high", "normal"))


@pytest.mark.parametrize(
    ("account", "qos", "message"),
    [
        ("root", None, "you may not charge Slurm account 'root' (yours: openlane)"),
        (None, "high", "you may not use Slurm QOS 'high' (yours: normal)"),
    ],
)
def test_anything_else_is_refused_with_the_allowed_names(account, qos, message):
    with pytest.raises(ValueError) as refused:
        check_charge(account, qos, ChargeGrant(("openlane",), ("normal",)))
    assert str(refused.value) == message


def test_the_defaults_and_the_granted_names_pass():
    grant = ChargeGrant(("openlane",), ("normal",))
    check_charge(None, None, grant)
    check_charge("openlane", "normal", grant)
    with pytest.raises(ValueError, match="only the cluster's default"):
        check_charge("openlane", None, ChargeGrant((), ()))


def test_sacctmgr_associations_argv_and_parse():
    assert associations_argv("ada")[:3] == ["sacctmgr", "--noheader", "--parsable2"]
    assert "where=user=ada" in associations_argv("ada")
    with pytest.raises(ValueError):
        associations_argv("ada; rm -rf /")
    recorded = "openlane|normal\nroot|normal\nopenlane|high,normal\nlab|\n"  # sacctmgr -nP
    assert parse_associations(recorded) == {
        "lab": (),
        "openlane": ("high", "normal"),
        "root": ("normal",),
    }
