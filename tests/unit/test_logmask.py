"""portal.logmask: reset, share-link and invitation tokens masked in log text."""

from __future__ import annotations

import logging

import pytest

from portal.logmask import SecretMaskingFilter, install_filter, mask_secrets

TOKEN = "eyJzIjoiYWJjIiwieCI6MSwibCI6Mn0.axUPIA.1x1HkW5ONHAWDClRDmHbygdfBcc"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"GET /auth/reset/{TOKEN} HTTP/1.1", "GET /auth/reset/*** HTTP/1.1"),
        (f"/shared/{TOKEN}", "/shared/***"),
        (f"/shared/{TOKEN}/tasks/0/files/a/b.gds", "/shared/***/tasks/0/files/a/b.gds"),
        (f"/shared/{TOKEN}?x=1", "/shared/***?x=1"),
        (f"/portal/shared/{TOKEN}/log", "/portal/shared/***/log"),  # under a script root
        (f"https://h.example/auth/reset/{TOKEN}", "https://h.example/auth/reset/***"),
        (f"/auth/register?invite={TOKEN}", "/auth/register?invite=***"),
        (f"/auth/register?a=1&invite={TOKEN}&b=2", "/auth/register?a=1&invite=***&b=2"),
        (f"invite={TOKEN}", "invite=***"),  # a bare query string (gunicorn's %(q)s)
        (f"/login?next=%2Fshared%2F{TOKEN}%2Ftasks", "/login?next=%2Fshared%2F***%2Ftasks"),
        (f"n=%2Fauth%2Fregister%3Finvite%3D{TOKEN}%26x", "n=%2Fauth%2Fregister%3Finvite%3D***%26x"),
        (f'"GET /shared/{TOKEN}" "/auth/reset/{TOKEN}"', '"GET /shared/***" "/auth/reset/***"'),
    ],
)  # fmt: skip
def test_tokens_are_masked(text, masked):
    assert mask_secrets(text) == masked
    assert mask_secrets(masked) == masked  # idempotent


@pytest.mark.parametrize(
    "text",
    [
        "GET /auth/reset HTTP/1.1",  # the form that asks for a link
        "POST /auth/reset HTTP/1.1",
        "GET /submissions/0b0b/tasks HTTP/1.1",
        "GET /account/tokens HTTP/1.1",
        "GET /auth/register HTTP/1.1",
        "GET /shared/ HTTP/1.1",
        "uninvited=1&reinvite",
        "",
    ],
)
def test_other_text_is_left_alone(text):
    assert mask_secrets(text) == text


def test_filter_masks_formatted_records_and_keeps_the_rest():
    record = logging.LogRecord(
        "portal", logging.ERROR, __file__, 1, "Exception on %s [%s]", (f"/shared/{TOKEN}", "GET"),
        None,
    )  # fmt: skip
    assert SecretMaskingFilter().filter(record) is True
    assert record.getMessage() == "Exception on /shared/*** [GET]"
    plain = logging.LogRecord("portal", logging.INFO, __file__, 1, "%s tasks", (3,), None)
    assert SecretMaskingFilter().filter(plain) is True
    assert (plain.msg, plain.args) == ("%s tasks", (3,))  # untouched


def test_install_filter_adds_one_filter_only():
    logger = logging.getLogger("portal.test-logmask")
    install_filter(logger)
    install_filter(logger)
    assert sum(isinstance(f, SecretMaskingFilter) for f in logger.filters) == 1
