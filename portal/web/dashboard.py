"""Blueprint ``dashboard``: the signed-in user's submissions (admins: everybody's).

One page costs three SQL statements whatever its size: a count for the pager, the page of
submissions (filtered, ordered and paginated in SQL, owner names joined in) and ONE grouped
query over the tasks of the submissions on the page for their progress bars. ``/dashboard/rows``
answers the same list as an htmx partial; it is polled only while a visible submission can
still change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import Select, func, or_, select

from portal.extensions import db
from portal.models import FINAL_STATES, Submission, SubmissionState, User
from portal.serialize import task_counts
from portal.web.access import is_admin
from portal.web.progress import Counts

bp = Blueprint("dashboard", __name__)

PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_QUERY_LENGTH = 200
POLL_SECONDS = 5
#: State filter groups offered besides the single states.
STATE_GROUPS: dict[str, tuple[str, frozenset[str]]] = {
    "active": ("Not finished", frozenset(SubmissionState) - FINAL_STATES),
    "finished": ("Finished", frozenset(FINAL_STATES)),
}


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """What the list shows: state (or state group), text search, own only, page."""

    state: str = ""
    q: str = ""
    mine: bool = False
    page: int = 1
    per_page: int = PER_PAGE

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        """Read filters from query arguments; anything unknown falls back to the default."""
        state = args.get("state", "")
        if state not in STATE_GROUPS and state not in SubmissionState.__members__:
            state = ""
        q = " ".join(args.get("q", "").split())[:MAX_QUERY_LENGTH]
        mine = args.get("mine", "") in ("1", "on", "true")
        return cls(
            state=state,
            q=q,
            mine=mine,
            page=_int_arg(args.get("page"), 1, 1, 10**6),
            per_page=_int_arg(args.get("per_page"), PER_PAGE, 5, MAX_PER_PAGE),
        )

    @property
    def active(self) -> bool:
        """True when some filter narrows the list (the page is not the plain list)."""
        return bool(self.state or self.q or self.mine)

    def args(self, **changes: Any) -> dict[str, Any]:
        """Query arguments for a URL with these filters (defaults left out)."""
        values: dict[str, Any] = {
            "state": self.state,
            "q": self.q,
            "mine": "1" if self.mine else "",
            "page": self.page,
            "per_page": self.per_page,
        }
        values.update(changes)
        if values["page"] == 1:
            values["page"] = ""
        if values["per_page"] == PER_PAGE:
            values["per_page"] = ""
        return {key: value for key, value in values.items() if value not in ("", None)}


def _int_arg(raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None or not raw.strip().isdigit():
        return default
    return min(max(int(raw), low), high)


def _states_of(state: str) -> frozenset[str]:
    if state in STATE_GROUPS:
        return STATE_GROUPS[state][1]
    return frozenset({state})


# --------------------------------------------------------------------------- progress


def progress_by_submission(submission_ids: Iterable[int]) -> dict[int, Counts]:
    """Task counts for many submissions with ONE grouped query."""
    return {
        sid: Counts(by_state) for sid, by_state in task_counts(db.session, submission_ids).items()
    }


# --------------------------------------------------------------------------- the list


@dataclass(frozen=True)
class Row:
    """One line of the list (plain columns; no ORM object, nothing lazy to load)."""

    id: int
    uuid: str
    name: str
    state: str
    repo_url: str
    ref: str
    flow: str
    n_tasks: int
    cost_core_hours: float
    job_ids: list[str]
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    error: str | None
    owner: str
    progress: Counts = field(default_factory=Counts)

    @property
    def final(self) -> bool:
        """Nothing about this submission will change any more."""
        return self.state in FINAL_STATES


@dataclass(frozen=True)
class Page:
    """A page of the list and what the pager needs."""

    rows: list[Row]
    total: int
    filters: Filters
    pages: int
    show_owner: bool

    @property
    def polling(self) -> bool:
        """True while some visible submission can still change."""
        return any(not row.final for row in self.rows)


_ROW_COLUMNS = (
    Submission.id,
    Submission.uuid,
    Submission.name,
    Submission.state,
    Submission.repo_url,
    Submission.ref,
    Submission.flow,
    Submission.n_tasks,
    Submission.cost_core_hours,
    Submission.job_ids,
    Submission.created_at,
    Submission.submitted_at,
    Submission.finished_at,
    Submission.error,
    User.username,
)


def _filtered(stmt: Select[Any], user: User, filters: Filters) -> Select[Any]:
    if not is_admin(user) or filters.mine:
        stmt = stmt.where(Submission.owner_id == user.id)
    if filters.state:
        stmt = stmt.where(Submission.state.in_(sorted(_states_of(filters.state))))
    if filters.q:
        stmt = stmt.where(
            or_(
                Submission.name.icontains(filters.q, autoescape=True),
                Submission.repo_url.icontains(filters.q, autoescape=True),
            )
        )
    return stmt


def list_page(user: User, filters: Filters) -> Page:
    """The page of submissions ``user`` may see under ``filters`` (3 queries in all)."""
    total = db.session.scalar(
        _filtered(select(func.count()).select_from(Submission), user, filters)
    )
    total = int(total or 0)
    pages = max(1, math.ceil(total / filters.per_page))
    if filters.page > pages:
        filters = Filters(filters.state, filters.q, filters.mine, pages, filters.per_page)
    stmt = (
        _filtered(select(*_ROW_COLUMNS).join(User, Submission.owner_id == User.id), user, filters)
        .order_by(Submission.id.desc())
        .limit(filters.per_page)
        .offset((filters.page - 1) * filters.per_page)
    )
    found = db.session.execute(stmt).all()
    progress = progress_by_submission(row[0] for row in found)
    rows = [Row(*row, progress=progress.get(row[0], Counts())) for row in found]
    return Page(rows, total, filters, pages, show_owner=is_admin(user) and not filters.mine)


# --------------------------------------------------------------------------- views


def submission_url(uuid: str) -> str:
    """The submission page (``detail.show``), also before that blueprint exists."""
    if "detail.show" in current_app.view_functions:
        return url_for("detail.show", uuid=uuid)
    return f"/submissions/{uuid}"


def _context(page: Page) -> dict[str, Any]:
    filters = page.filters
    return {
        "page": page,
        "filters": filters,
        "rows_url": url_for("dashboard.rows", **filters.args()),
        "page_url": lambda number: url_for("dashboard.index", **filters.args(page=number)),
        "submission_url": submission_url,
        "state_groups": STATE_GROUPS,
        "states": list(SubmissionState),
        "poll_seconds": POLL_SECONDS,
        "is_admin": is_admin(current_user),
        "new_url": (
            url_for("submissions.new") if "submissions.new" in current_app.view_functions else None
        ),
    }


@bp.get("/")
@login_required
def index() -> Any:
    """The list of submissions with filters and pager."""
    page = list_page(current_user, Filters.from_args(request.args))
    return render_template("dashboard/index.html", **_context(page))


@bp.get("/dashboard/rows")
@login_required
def rows() -> Any:
    """The list alone (htmx partial, same filters as the page)."""
    page = list_page(current_user, Filters.from_args(request.args))
    response = current_app.make_response(render_template("dashboard/_rows.html", **_context(page)))
    if request.headers.get("HX-Trigger") == "dashboard-filters":
        # A filter change: keep the address bar in step, so reload and back show the same list.
        response.headers["HX-Replace-Url"] = url_for("dashboard.index", **page.filters.args())
    return response
