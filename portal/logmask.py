"""Keep secrets that travel in URLs out of the logs.

Password-reset tokens (``/auth/reset/<token>``), share-link tokens (``/shared/<token>/...``) and
invitations (``/auth/register?invite=<token>``) are bearer secrets in the URL: whoever reads an
access log line with one can use it. :func:`mask_secrets` replaces each with ``***`` (also when
the slashes or the ``?``/``=`` are percent-encoded, as in a ``next=`` parameter or a Referer),
leaving the rest of the line as it was. :class:`SecretMaskingFilter` applies it to log records;
``portal.gunicorn_conf`` applies it to gunicorn's access log.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_SLASH = r"(?:/|%2[fF])"
#: a path segment: up to the next slash (also an encoded one), query, fragment, space or quote
_SEGMENT = r"(?:(?!%2[fF])[^/?#\s\"'])+"
_PATH_SECRET = re.compile(rf"({_SLASH}(?:auth{_SLASH}reset|shared){_SLASH}){_SEGMENT}")
#: ``invite=<token>`` in a query string, plain or percent-encoded (``%3Finvite%3D...``)
_QUERY_SECRET = re.compile(
    r"((?:^|[?&;]|%3[fF]|%26)invite(?:=|%3[dD]))(?:(?!%26)[^&;#\s\"'])+", re.IGNORECASE
)


def mask_secrets(text: str) -> str:
    """``text`` with every reset, share-link and invitation token replaced by ``***``."""
    if "reset" not in text and "shared" not in text and "invite" not in text.lower():
        return text  # the common case: nothing to look at
    text = _PATH_SECRET.sub(rf"\g<1>{MASK}", text)
    return _QUERY_SECRET.sub(rf"\g<1>{MASK}", text)


class SecretMaskingFilter(logging.Filter):
    """Mask URL secrets in the message of every record that passes (formats it first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is logging's own business
            return True
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def install_filter(logger: logging.Logger) -> None:
    """Add a :class:`SecretMaskingFilter` to ``logger`` once."""
    if not any(isinstance(f, SecretMaskingFilter) for f in logger.filters):
        logger.addFilter(SecretMaskingFilter())
