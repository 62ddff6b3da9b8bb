"""Signals: webhook credentials, alert-to-order mappings, received signals, TradingView/Chartink bodies."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from marshmallow import EXCLUDE, Schema, fields, post_load, validate

from backend.api.common import ListQuerySchema
from backend.models.signals import SIGNAL_STATUSES

SIDES = ["BUY", "SELL"]
PRODUCTS = ["I", "D"]
# MARKET, or LIMIT at the price the alert carries (a mapping holds no price of its own).
TYPES = ["MARKET", "LIMIT"]
_NAME = validate.Regexp(r"^[A-Za-z0-9 ._:-]{1,64}$", error="1-64 characters of A-Z a-z 0-9 space . _ : -")


class SignalMappingCreateSchema(Schema):
    swagger_example = {
        "name": "sbin-long",
        "symbol": "SBIN",
        "side": "BUY",
        "quantity": 1,
        "product": "D",
        "type": "MARKET",
    }
    name = fields.String(
        required=True,
        validate=_NAME,
        metadata={"description": "Sent as `mapping` (TradingView) or alert name"},
    )
    account_id = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=64))
    side = fields.String(required=True, validate=validate.OneOf(SIDES))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000_000))
    product = fields.String(load_default="D", validate=validate.OneOf(PRODUCTS))
    order_type = fields.String(
        data_key="type", load_default="MARKET", validate=validate.OneOf(TYPES), attribute="order_type"
    )

    @post_load
    def _upper(self, data, **kwargs):
        if "symbol" in data:
            data["symbol"] = data["symbol"].strip().upper()
        return data


class SignalMappingUpdateSchema(SignalMappingCreateSchema):
    swagger_example = {"quantity": 2}

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class SignalMappingSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    account_id = fields.Integer(allow_none=True)
    symbol = fields.String()
    side = fields.String()
    quantity = fields.Integer()
    product = fields.String()
    order_type = fields.String(data_key="type")
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class SignalWebhookSchema(Schema):
    configured = fields.Boolean()
    hmac_required = fields.Boolean()
    rotated_at = fields.DateTime(allow_none=True)
    token = fields.String(allow_none=True, metadata={"description": "Shown only in the rotate response"})
    hmac_secret = fields.String(allow_none=True, metadata={"description": "Shown only when set"})


class HmacSettingSchema(Schema):
    swagger_example = {"enabled": True}
    enabled = fields.Boolean(required=True, metadata={"description": "true: new secret; false: remove it"})


class SignalListQuerySchema(ListQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(SIGNAL_STATUSES))


class SignalSchema(Schema):
    id = fields.Integer()
    alert_id = fields.String(allow_none=True)
    source = fields.String()
    mapping_id = fields.Integer(allow_none=True)
    status = fields.String(metadata={"enum": list(SIGNAL_STATUSES)})
    order_id = fields.Integer(allow_none=True)
    order_status = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    payload = fields.Dict()
    created_at = fields.DateTime()


class TradingViewAlertSchema(Schema):
    """The alert message the user writes in TradingView (placeholders such as {{close}} filled in)."""

    swagger_example = {"mapping": "sbin-long", "alert_id": "{{strategy.order.id}}-{{timenow}}"}

    class Meta:
        unknown = EXCLUDE

    mapping = fields.String(required=True, validate=validate.Length(min=1, max=64))
    alert_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    price = fields.Decimal(load_default=None, allow_none=True, places=2, validate=validate.Range(min=0.01))

    @post_load
    def _normalise(self, data, **kwargs):
        return {**data, "source": "tradingview", "mapping_field": "mapping"}


class ChartinkAlertSchema(Schema):
    """Chartink's fixed body: comma-separated ``stocks`` of the scan, ``triggered_at``, ``scan_name``..."""

    class Meta:
        unknown = EXCLUDE

    stocks = fields.String(required=True, validate=validate.Length(min=1))
    trigger_prices = fields.String(load_default=None, allow_none=True)
    triggered_at = fields.String(required=True, validate=validate.Length(min=1, max=64))
    scan_name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    alert_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))

    @post_load
    def _normalise(self, data, **kwargs):
        name_field = "alert_name" if data.get("alert_name") else "scan_name"
        symbols = [s.strip().upper() for s in data["stocks"].split(",") if s.strip()]
        prices: dict[str, Decimal] = {}
        raw = [p.strip() for p in (data.get("trigger_prices") or "").split(",")]
        if len(raw) == len(symbols):
            for sym, text in zip(symbols, raw, strict=True):
                try:
                    prices[sym] = Decimal(text).quantize(Decimal("0.01"))
                except InvalidOperation:
                    continue
        return {
            "source": "chartink",
            "mapping": data[name_field],
            "mapping_field": name_field,
            # Chartink sends no id: one scan's firing at one time is one alert
            "alert_id": f"chartink:{data['scan_name']}:{data['triggered_at']}"[:128],
            "symbols": symbols,
            "prices": prices,
            "price": None,
        }
