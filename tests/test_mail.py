"""The mail interface: SMTP when MAIL_SMTP_HOST is set, else the development outbox and the log."""

from __future__ import annotations

import socketserver
import threading

import pytest

from autoseq import mail


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to receive one message: what smtplib sends, nothing more."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 test ESMTP")
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 test")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.server.envelope.append(command)
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = []
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data.append(chunk)
                self.server.messages.append(b"".join(data).decode())
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_server(app):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.envelope, server.messages = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    app.config.update(MAIL_SMTP_HOST="127.0.0.1", MAIL_SMTP_PORT=port, MAIL_SMTP_STARTTLS=False)
    yield server
    app.config.update(MAIL_SMTP_HOST=None, MAIL_SMTP_PORT=587, MAIL_SMTP_STARTTLS=True)
    server.shutdown()
    server.server_close()


def test_with_an_smtp_host_mail_goes_through_smtp(smtp_server):
    mail.send("ann@example.com", "Hello", "A body line.\n")
    assert "rcpt to:<ann@example.com>" in [c.lower() for c in smtp_server.envelope]
    (message,) = smtp_server.messages
    assert "Subject: Hello" in message and "A body line." in message
    assert mail.outbox() == []  # not the development outbox


def test_without_one_mail_is_logged_and_kept_for_the_outbox_page(caplog):
    with caplog.at_level("INFO", logger="autoseq.mail"):
        mail.send("bob@example.com", "Hi", "Body\n")
    assert "bob@example.com" in caplog.text and "Body" in caplog.text
    assert mail.outbox()[0]["to"] == "bob@example.com"


def test_the_outbox_page_is_not_served_in_production(app, client):
    app.config["AUTOSEQ_ENV"] = "production"
    try:
        assert client.get("/dev/mail").status_code == 404
    finally:
        app.config["AUTOSEQ_ENV"] = "testing"
