"""Outgoing mail: one small interface, :func:`send`, over SMTP or the development outbox.

With ``MAIL_SMTP_HOST`` set, mail goes through that SMTP server (``MAIL_SMTP_PORT``,
``MAIL_SMTP_USERNAME``/``MAIL_SMTP_PASSWORD``, STARTTLS unless ``MAIL_SMTP_STARTTLS=false``), from
``MAIL_FROM``. Without it (development, tests), the message is printed to the log and kept in a
short Redis list that the local page ``/dev/mail`` shows, so the invitation and verification flows
work with no mail server. Production without an SMTP host logs a warning at each message.
"""

from __future__ import annotations

import json
import logging
import smtplib
from email.message import EmailMessage

from flask import current_app

from .models.base import utcnow

log = logging.getLogger(__name__)
OUTBOX_KEY = "autoseq:dev-outbox"
OUTBOX_SIZE = 50


def send(to: str, subject: str, body: str) -> None:
    """Send a plain-text message to one address."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if config.get("MAIL_SMTP_HOST"):
        with smtplib.SMTP(config["MAIL_SMTP_HOST"], config["MAIL_SMTP_PORT"], timeout=10) as smtp:
            if config["MAIL_SMTP_STARTTLS"]:
                smtp.starttls()
            if config.get("MAIL_SMTP_USERNAME"):
                smtp.login(config["MAIL_SMTP_USERNAME"], config.get("MAIL_SMTP_PASSWORD") or "")
            smtp.send_message(message)
        log.info("mail sent to %s: %s", to, subject)
        return
    if config["AUTOSEQ_ENV"] == "production":
        log.warning("MAIL_SMTP_HOST is not set: mail to %s is only logged", to)
    log.info("mail (not sent, no SMTP host) to %s: %s\n%s", to, subject, body)
    record = {"to": to, "subject": subject, "body": body, "at": utcnow().isoformat()}
    redis = current_app.extensions["redis"]
    pipe = redis.pipeline()
    pipe.lpush(OUTBOX_KEY, json.dumps(record))
    pipe.ltrim(OUTBOX_KEY, 0, OUTBOX_SIZE - 1)
    pipe.execute()


def uses_outbox() -> bool:
    """True when mail lands in the development outbox (no SMTP host, not production)."""
    config = current_app.config
    return not config.get("MAIL_SMTP_HOST") and config["AUTOSEQ_ENV"] != "production"


def outbox() -> list[dict]:
    """The development outbox, newest first."""
    raw = current_app.extensions["redis"].lrange(OUTBOX_KEY, 0, OUTBOX_SIZE - 1)
    return [json.loads(item) for item in raw]
