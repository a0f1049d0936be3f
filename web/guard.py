"""What guards every request of the site, readers' and editors' alike.

A secret key kept across restarts, the session cookie's flags, a CSRF token bound to the
reader's session on every unsafe request, one rate limiter per app (blueprints add their own
limits to it), and pages a shared cache must not keep once they read the session.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, current_app, g, render_template, request, session
from flask.sansio.app import App
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from aggregator.types import Config
from web import context

__all__ = ["csrf_token", "guard", "is_https", "limit", "same", "secret_key"]

log = logging.getLogger(__name__)

SECRET_KEY_FILE = Path("instance") / "secret_key"
SESSION_CSRF = "csrf"
LIMITER = "caulbart.limiter"


def guard(app: Flask) -> None:
    """Secret key, session cookie, CSRF check, the rate limiter and the pages that refuse."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key()
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SECURE", is_https(app.extensions[context.CONFIG]))
    app.extensions[LIMITER] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=os.environ.get("CAULBART_RATELIMIT_STORAGE", "memory://"),
        headers_enabled=True,
        # Redis away: each process limits on its own meanwhile, rather than refusing comments.
        in_memory_fallback_enabled=True,
    )
    app.before_request(check_csrf)
    app.after_request(private_when_personal)
    app.add_template_global(csrf_token)
    app.register_error_handler(429, too_many)
    app.register_error_handler(400, bad_request)


def limit(app: App, endpoint: str, rate: str) -> None:
    """Wrapped once the view is registered, not decorated at import: each app gets its own
    limiter and storage."""
    limiter: Limiter = app.extensions[LIMITER]
    view: Any = app.view_functions[endpoint]
    app.view_functions[endpoint] = limiter.limit(rate)(view)


def is_https(config: Config) -> bool:
    return config.site.base_url.lower().startswith("https://")


def secret_key() -> str:
    """CAULBART_SECRET_KEY, else a random key made once and kept in instance/secret_key (0600),
    so sessions survive restarts and every process on the machine signs alike."""
    from_env = os.environ.get("CAULBART_SECRET_KEY")
    if from_env:
        return from_env
    if SECRET_KEY_FILE.exists():
        return SECRET_KEY_FILE.read_text(encoding="ascii").strip()
    SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    draft = SECRET_KEY_FILE.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    try:
        os.link(draft, SECRET_KEY_FILE)  # atomic: of two processes racing, one key wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return SECRET_KEY_FILE.read_text(encoding="ascii").strip()


def csrf_token() -> str:
    """The form token: an HMAC of a random value kept in the reader's signed session cookie.

    Stable for a session (so a story page's ETag holds for its reader), useless to any other
    site, which can neither read the cookie nor compute the HMAC without the secret key.
    """
    g.personal = True
    raw = session.get(SESSION_CSRF)
    if not isinstance(raw, str):
        raw = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = raw
    return _sign(raw)


def _sign(raw: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"csrf:" + raw.encode(), hashlib.sha256).hexdigest()


def same(given: str, expected: str) -> bool:
    """Constant-time comparison that any text may be given to (str needs ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def check_csrf() -> None:
    """Every unsafe request to the app carries the session's token, or is refused (400).

    A request no route takes (an unknown address, a method such as PUT) is left to routing,
    which answers it 404 or 405 before any view runs."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.routing_exception is not None:
        return
    raw = session.get(SESSION_CSRF)
    sent = request.form.get("csrf_token", "")
    if not isinstance(raw, str) or not sent or not same(sent, _sign(raw)):
        log.info("refused without a valid CSRF token path=%s", request.path)
        abort(400, description="csrf")


def private_when_personal(response: Response) -> Response:
    """A page that read the session (a form token, an author's own pending comment) is for its
    reader alone: shared caches must not keep it."""
    if g.get("personal") and "public" in (response.headers.get("Cache-Control") or ""):
        response.headers["Cache-Control"] = "private, no-cache"
    return response


def too_many(error: HTTPException) -> ResponseReturnValue:
    return (
        render_template(
            "error.html",
            heading="Too many comments",
            message="You have sent several comments in a short time. Please wait a few "
            "minutes before sending another.",
        ),
        429,
    )


def bad_request(error: HTTPException) -> ResponseReturnValue:
    if getattr(error, "description", "") == "csrf":
        message = (
            "Your comment could not be accepted: the form had expired or did not come from "
            "this site. Please reload the story, then send your comment again."
        )
    else:
        message = "The request could not be understood."
    return render_template("error.html", heading="Request refused", message=message), 400
