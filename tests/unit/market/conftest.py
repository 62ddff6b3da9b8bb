"""Fixtures for market-data tests: the Upstox stub served on 127.0.0.1 (ephemeral port)."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from tests.stubs.upstox_stub import StubState, create_stub_app


@pytest.fixture
def upstox_stub():
    """Yields (base_url, state); the server thread stops when the test ends."""
    state = StubState()
    server = make_server("127.0.0.1", 0, create_stub_app(state), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", state
    finally:
        server.shutdown()
        thread.join(timeout=5)
