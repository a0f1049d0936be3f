"""Caulbart's web front (Flask). `create_app` is the application factory."""

from __future__ import annotations

from web.app import create_app

__all__ = ["create_app"]
