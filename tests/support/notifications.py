"""Where Alertmanager's notifications land in tests: a webhook receiver, an SMTP sink, a Telegram Bot API.

Each runs in the test's own event loop on a free loopback port and records what arrived, with the
monotonic time it arrived, so a test can assert who was told what and how fast.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    body: dict[str, Any]


@dataclass
class HttpSink:
    """An aiohttp server recording JSON bodies POSTed to any path (`received[path]`)."""

    reply: dict[str, Any] = field(default_factory=dict)
    received: dict[str, list[Received]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.received.setdefault(request.path, []).append(Received(time.monotonic(), body))
        return web.json_response(self.reply)

    async def start(self) -> HttpSink:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def telegram_api() -> HttpSink:
    """The Bot API's `sendMessage` as Alertmanager's client expects its answer (`ok` and the message)."""
    return HttpSink(reply={"ok": True, "result": {"message_id": 1, "date": 0, "chat": {"id": 0, "type": "group"}}})


@dataclass
class Mail:
    at: float
    sender: str
    recipients: list[str]
    subject: str
    text: str
    login: tuple[str, str] | None


class SmtpSink:
    """An aiosmtpd server that keeps every message; accepts AUTH PLAIN over plain text (loopback only)."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = [p for p in message.walk() if p.get_content_type() == "text/plain"] or [message]
        text = "\n".join(str(p.get_content()) for p in parts if not p.is_multipart())
        login = session.auth_data if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(
            Mail(
                time.monotonic(),
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                str(message["Subject"]),
                text,
                (login.login.decode(), login.password.decode()) if login else None,
            )
        )
        return "250 OK"

    @staticmethod
    def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=isinstance(data, LoginPassword), auth_data=data)

    async def start(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self,
                authenticator=self._authenticate,
                auth_require_tls=False,
                # Alertmanager's LOGIN expects the prompt "Username:", aiosmtpd sends "User Name": PLAIN only
                auth_exclude_mechanism=["LOGIN"],
                hostname="sink.localhost",
            ),
            "127.0.0.1",
            0,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address in m.recipients]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()
