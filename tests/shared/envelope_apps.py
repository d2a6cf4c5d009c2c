"""A bare Flask app with the envelope API, for tests of ``shared.api`` without a service around it."""

from __future__ import annotations

from flask import Flask

from shared.api import EnvelopeApi


def envelope_app(name: str, max_content_length: int) -> tuple[Flask, EnvelopeApi]:
    app = Flask(name)
    app.config.update(API_TITLE="t", API_VERSION="1", MAX_CONTENT_LENGTH=max_content_length)
    return app, EnvelopeApi(app)
