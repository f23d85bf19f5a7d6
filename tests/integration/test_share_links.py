"""Share links as rows: each link made from the submission page is a ``share_links`` row whose
id its signed token carries, so the owner or an admin can revoke links one by one (410), while
the other links of the submission keep working. Forged links stay 404 and expired ones 410.

No cluster: the submission is a database row only (like the synthetic ones of
test_web_detail.py), which is all the page, the share form and the link checks need. CSRF on.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditLog, ShareLink, Submission, Task, User, utcnow
from portal.web import sharing
from tests.integration.web_helpers import SITE, add_user, csrf, login  # noqa: F401 - fixtures

LINK_RE = re.compile(r'id="share-link-value">([^<]+)<')
REVOKE_RE = re.compile(r'action="(/submissions/[^"]+/share-links/(\d+)/revoke)"')


@pytest.fixture
def site(app):
    """ada owns one finished (database-only) submission; bob is another user, grace an admin."""
    add_user(app)
    add_user(app, "bob")
    add_user(app, "grace", role="admin")
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        sub = Submission(
            owner_id=owner.id,
            name="shared sweep",
            repo_url="git://example.invalid/x.git",
            ref="main",
            flow="openlane1",
            state="COMPLETED",
            n_tasks=2,
            job_ids=["999999"],
        )
        db.session.add(sub)
        db.session.flush()
        db.session.add_all(
            Task(submission_id=sub.id, index=i, params={"CLOCK_PERIOD": 10 + i},
                 state="COMPLETED", array_job_id="999999", array_index=i,
                 metrics={"die_area_um2": 1000.0 + i})
            for i in range(2)
        )  # fmt: skip
        db.session.commit()
        app.config["TEST_UUID"] = sub.uuid
    return app


def client_for(app, name="ada"):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def share(client, uuid, seconds=3600) -> str:
    """Make a link through the page's form; return its path (``/shared/<token>``)."""
    page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
    shown = client.post(
        f"/submissions/{uuid}/share",
        data={"csrf_token": csrf(page), "expires": str(seconds)},
        follow_redirects=True,
    ).get_data(as_text=True)
    url = LINK_RE.search(shown).group(1)
    assert url.startswith(f"{SITE}/shared/")
    return url[len(SITE) :]


def links(app) -> list[ShareLink]:
    with app.app_context():
        rows = db.session.scalars(select(ShareLink).order_by(ShareLink.id)).all()
        db.session.expunge_all()
        return rows


def revoke_forms(page: str) -> dict[int, str]:
    """``{link id: revoke URL}`` of the page's share-links list."""
    return {int(link_id): url for url, link_id in REVOKE_RE.findall(page)}


def revoke(client, uuid, url):
    page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf(page)})


# --------------------------------------------------------------------------- rows


def test_each_link_is_a_row_named_in_its_token(site):
    uuid = site.config["TEST_UUID"]
    ada = client_for(site)
    first, second = share(ada, uuid), share(client_for(site, "grace"), uuid, 86400)
    rows = links(site)
    assert len(rows) == 2
    with site.app_context():
        by_name = {u.username: u.id for u in db.session.scalars(select(User))}
        payloads = [sharing.serializer().loads(p.split("/")[2]) for p in (first, second)]
    assert [p["l"] for p in payloads] == [r.id for r in rows]
    assert [p["s"] for p in payloads] == [uuid, uuid]
    assert [r.created_by_id for r in rows] == [by_name["ada"], by_name["grace"]]
    for row, seconds in zip(rows, (3600, 86400), strict=True):
        assert row.revoked_at is None and row.last_used_at is None
        assert abs((row.expires_at - row.created_at).total_seconds() - seconds) < 5
    # using a link records it (at most once a minute)
    anonymous = site.test_client()
    assert anonymous.get(first).status_code == 200
    used = links(site)[0].last_used_at
    assert used is not None
    assert anonymous.get(first + "/tasks").status_code == 200
    assert links(site)[0].last_used_at == used


# --------------------------------------------------------------------------- revocation


def test_revoked_link_answers_410_and_the_others_still_work(site):
    uuid = site.config["TEST_UUID"]
    ada = client_for(site)
    doomed, kept = share(ada, uuid), share(ada, uuid)
    doomed_id = links(site)[0].id
    anonymous = site.test_client()
    for path in (doomed, kept):
        assert anonymous.get(path).status_code == 200
    page = ada.get(f"/submissions/{uuid}").get_data(as_text=True)
    forms = revoke_forms(page)
    assert set(forms) == {row.id for row in links(site)}  # both listed, both revocable
    done = revoke(ada, uuid, forms[doomed_id])
    assert done.status_code == 302 and done.headers["Location"].endswith("#share-links")
    htmx = {"HX-Request": "true"}
    for suffix in ("", "/tasks", "/tasks/0", "/results.csv", "/results.json"):
        refused = anonymous.get(doomed + suffix, headers=htmx)
        assert refused.status_code == 410, suffix
        assert b"shared sweep" not in refused.data
        assert anonymous.get(kept + suffix, headers=htmx).status_code == 200, suffix
    page = anonymous.get(doomed).get_data(as_text=True)
    assert "This share link was revoked" in page and "no longer opens" in page
    assert anonymous.get(doomed).headers["X-Robots-Tag"] == "noindex"
    # the list shows it revoked, without a button; revoking again changes nothing
    page = ada.get(f"/submissions/{uuid}").get_data(as_text=True)
    assert set(revoke_forms(page)) == {links(site)[1].id}
    assert re.search(rf'data-link="{doomed_id}" data-state="revoked"', page)
    again = revoke(ada, uuid, forms[doomed_id])
    assert again.status_code == 302
    with site.app_context():
        records = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "submission.share_revoke")
        ).all()
        assert [r.detail["link_id"] for r in records] == [doomed_id]
        assert records[0].actor_id == db.session.scalar(
            select(User.id).where(User.username == "ada")
        )


def test_an_admin_may_revoke_and_other_users_may_not(site):
    uuid = site.config["TEST_UUID"]
    path = share(client_for(site), uuid)
    link_id = links(site)[0].id
    url = f"/submissions/{uuid}/share-links/{link_id}/revoke"
    bob = client_for(site, "bob")
    assert bob.get(f"/submissions/{uuid}").status_code == 404
    assert revoke(bob, "x", url).status_code == 404  # not his submission: 404, nothing revoked
    anonymous = site.test_client()
    token = csrf(anonymous.get("/auth/login").get_data(as_text=True))
    refused = anonymous.post(url, data={"csrf_token": token})
    assert refused.status_code == 302 and "/auth/login" in refused.headers["Location"]
    assert anonymous.get(path).status_code == 200
    grace = client_for(site, "grace")
    admin_page = grace.get(f"/submissions/{uuid}").get_data(as_text=True)
    assert revoke_forms(admin_page) == {link_id: url}
    assert revoke(grace, uuid, url).status_code == 302
    assert anonymous.get(path).status_code == 410


def test_revoking_needs_csrf_and_the_links_own_submission(site):
    uuid = site.config["TEST_UUID"]
    ada = client_for(site)
    path = share(ada, uuid)
    link_id = links(site)[0].id
    url = f"/submissions/{uuid}/share-links/{link_id}/revoke"
    assert ada.post(url).status_code == 400  # no CSRF token
    assert ada.post(url, data={"csrf_token": "forged"}).status_code == 400
    assert ada.get(url).status_code == 405
    with site.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        other = Submission(owner_id=owner.id, repo_url="git://x/y.git", ref="main", flow="x")
        db.session.add(other)
        db.session.commit()
        other_uuid = other.uuid
    wrong = revoke(ada, uuid, f"/submissions/{other_uuid}/share-links/{link_id}/revoke")
    assert wrong.status_code == 404
    assert revoke(ada, uuid, f"/submissions/{uuid}/share-links/999999/revoke").status_code == 404
    assert site.test_client().get(path).status_code == 200
    assert links(site)[0].revoked_at is None


def test_link_holders_see_no_list_and_cannot_revoke(site):
    uuid = site.config["TEST_UUID"]
    path = share(client_for(site), uuid)
    anonymous = site.test_client()
    page = anonymous.get(path).get_data(as_text=True)
    assert 'id="share-links"' not in page and "/revoke" not in page
    assert "unless they revoke it" in page
    token = path.split("/")[2]
    assert anonymous.post(f"/shared/{token}/share-links/1/revoke").status_code in (404, 405)


# --------------------------------------------------------------------------- refusals kept


def test_forged_tokens_stay_404(site):
    uuid = site.config["TEST_UUID"]
    path = share(client_for(site), uuid)
    token = path.split("/")[2]
    link_id = links(site)[0].id
    future = int(time.time()) + 3600
    with site.app_context():
        other_key = URLSafeTimedSerializer("not the portal's key", salt=sharing.SHARE_SALT)
        foreign = other_key.dumps({"s": uuid, "x": future, "l": link_id})
        not_a_dict = sharing.serializer().dumps([uuid])
        missing = sharing.serializer().dumps({"s": "0" * 36, "x": future, "l": link_id})
        no_row = sharing.serializer().dumps({"s": uuid, "x": future, "l": 999999})
        bad_id = sharing.serializer().dumps({"s": uuid, "x": future, "l": "1"})
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        other = Submission(owner_id=owner.id, repo_url="git://x/y.git", ref="main", flow="x")
        db.session.add(other)
        db.session.commit()
        # a genuine row id, but of another submission's link
        crossed = sharing.serializer().dumps({"s": other.uuid, "x": future, "l": link_id})
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    anonymous = site.test_client()
    for bad in (flipped, foreign, not_a_dict, missing, no_row, bad_id, crossed, "garbage"):
        for suffix in ("", "/tasks"):
            response = anonymous.get(f"/shared/{bad}{suffix}")
            assert response.status_code == 404, (bad[:20], suffix)
        assert "This share link is not valid" in anonymous.get(f"/shared/{bad}").get_data(True)


def test_expired_links_stay_410(site):
    uuid = site.config["TEST_UUID"]
    path = share(client_for(site), uuid)
    link_id = links(site)[0].id
    anonymous = site.test_client()

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 24 * 3600

    with site.app_context():
        old_signer = URLSafeTimedSerializer(
            site.config["SECRET_KEY"], salt=sharing.SHARE_SALT, signer=EightDaysAgo
        )
        old = old_signer.dumps({"s": uuid, "x": int(time.time()) + 3600, "l": link_id})
        lapsed = sharing.serializer().dumps({"s": uuid, "x": int(time.time()) - 1, "l": link_id})
    for token in (old, lapsed):
        response = anonymous.get(f"/shared/{token}")
        assert response.status_code == 410
        assert "This share link has expired" in response.get_data(as_text=True)
    # the row's own expiry counts too
    assert anonymous.get(path).status_code == 200
    with site.app_context():
        db.session.get(ShareLink, link_id).expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert anonymous.get(path).status_code == 410
    page = client_for(site).get(f"/submissions/{uuid}").get_data(as_text=True)
    assert re.search(rf'data-link="{link_id}" data-state="expired"', page)
    assert revoke_forms(page) == {}


def test_links_signed_before_links_had_rows_are_refused_as_revoked(site):
    """A token without a row id cannot be revoked by anybody, so it no longer opens anything."""
    uuid = site.config["TEST_UUID"]
    with site.app_context():
        legacy = sharing.serializer().dumps({"s": uuid, "x": int(time.time()) + 3600})
    response = site.test_client().get(f"/shared/{legacy}")
    assert response.status_code == 410
    assert "This share link was revoked" in response.get_data(as_text=True)


def test_make_token_outside_a_request_records_a_row(site):
    uuid = site.config["TEST_UUID"]
    with site.app_context():
        limit = site.config["SHARE_LINK_MAX_AGE"]
        for seconds in (0, -5, limit + 1, True, 1.5):
            with pytest.raises(ValueError):
                sharing.make_token(uuid, seconds)
        with pytest.raises(ValueError):
            sharing.make_token("0" * 36, 60)
        token, expires = sharing.make_token(uuid, limit)
        assert sharing.load_token(token) == (uuid, expires)
        db.session.commit()
    (row,) = links(site)
    assert row.created_by_id is None and row.expires_at == expires
    assert site.test_client().get(f"/shared/{token}").status_code == 200
