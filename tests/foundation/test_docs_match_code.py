"""The docs name what the server actually sends (issue 17: realtime.md named an `order` event)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMIT_PATTERNS = [
    re.compile(r'emit_to_user\(\s*[^,]+,\s*"([\w.]+)"'),
    re.compile(r'self\._row\(\s*[^,]+,\s*"([\w.]+)"'),
    re.compile(r'\bemit\(\s*"([\w.]+)"'),
    re.compile(r'events\.add\(\s*[^,]+,\s*"([\w.]+)"'),  # the deferred Events of the trading services
]


def _emitted() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "backend").rglob("*.py"):
        text = path.read_text()
        for pattern in EMIT_PATTERNS:
            names.update(pattern.findall(text))
    return names


def _documented_server_events() -> set[str]:
    text = (ROOT / "docs" / "realtime.md").read_text()
    table = text[text.index("### Server → client") :]
    table = table[: table.index("\n\n", table.index("| Event |"))]
    names: set[str] = set()
    for line in table.splitlines()[3:]:
        first_cell = line.split("|")[1]
        names.update(re.findall(r"`([\w.]+)`", first_cell))
    return names


def test_documented_socketio_events_are_the_emitted_ones():
    emitted, documented = _emitted(), _documented_server_events()
    assert {"order_update", "fill", "position_update", "alert"} <= emitted  # the scan works
    assert {"stop_exit_rejected", "expiry_settlement"} <= emitted  # and sees events.add(...)
    assert documented - emitted == set(), "documented but never sent"
    assert emitted - documented == set(), "sent but not documented in docs/realtime.md"


def test_realtime_examples_use_only_real_event_names():
    text = (ROOT / "docs" / "realtime.md").read_text()
    used = set(re.findall(r'(?:socket|sio)\.on\(\s*"([\w.]+)"', text))
    used |= set(re.findall(r'emit_to_user\(\s*\w+,\s*"([\w.]+)"', text))
    builtin = {"connect", "connect_error", "disconnect"}
    assert used - builtin - _emitted() == set()


def test_webhook_example_has_exactly_the_fields_sent():
    from backend.models.alerts import AlertHistory
    from backend.services.alerts import history_payload

    text = (ROOT / "docs" / "alerts.md").read_text()
    section = text[text.index("## Webhook payload") :]
    example = json.loads(
        section[section.index("```json") + 7 : section.index("```", section.index("```json") + 7)]
    )
    hist = AlertHistory(
        id=1,
        rule_id=2,
        symbol="RELIANCE",
        kind="price_above",
        price=None,
        message="m",
        payload={},
        is_test=False,
        fired_at=datetime.now(UTC),
    )
    assert set(example["data"]) == set(history_payload(hist))
    assert example["event"] == "alert.fired"
