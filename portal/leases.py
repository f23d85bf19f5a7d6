"""Database leases: exactly one holder at a time, whatever the number of processes.

A holder renews its lease every cycle; a lease that is not renewed expires and another process
takes it over. The take-over is one conditional UPDATE, so two processes cannot both win.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import Lease, utcnow


def holder_id() -> str:
    """This process: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def acquire(name: str, holder: str, seconds: float) -> bool:
    """Take or renew the lease ``name`` for ``seconds``; True when ``holder`` now holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    result = db.session.execute(
        update(Lease)
        .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
        .values(holder=holder, expires_at=expires)
    )
    if result.rowcount == 1:
        db.session.commit()
        return True
    db.session.rollback()
    if db.session.get(Lease, name) is not None:
        return False
    try:
        db.session.add(Lease(name=name, holder=holder, expires_at=expires))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()
        return False


def release(name: str, holder: str) -> None:
    """Give the lease up early (clean shutdown)."""
    db.session.execute(
        update(Lease).where(Lease.name == name, Lease.holder == holder).values(expires_at=utcnow())
    )
    db.session.commit()
