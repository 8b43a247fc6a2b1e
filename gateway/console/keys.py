"""Typed keys of the console's state on the application and the request."""

from __future__ import annotations

from aiohttp import web

from gateway.console.sessions import Session, Sessions
from gateway.console.signin_limit import FailedSignIns

SESSIONS = web.AppKey("console_sessions", Sessions)
FAILED_SIGNINS = web.AppKey("console_failed_signins", FailedSignIns)

SESSION = web.RequestKey("console_session", Session)
