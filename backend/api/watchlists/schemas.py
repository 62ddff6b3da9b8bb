"""Marshmallow schemas for the watchlists namespace."""

from marshmallow import Schema, fields, validate

_NAME = validate.Length(min=1, max=60)
_SYMBOL = fields.String(validate=validate.Length(min=1, max=64))


class WatchlistCreateSchema(Schema):
    swagger_example = {"name": "Banks", "symbols": ["HDFCBANK", "ICICIBANK", "SBIN"]}
    name = fields.String(required=True, validate=_NAME)
    symbols = fields.List(_SYMBOL, load_default=list, validate=validate.Length(max=100))


class WatchlistRenameSchema(Schema):
    swagger_example = {"name": "Private banks"}
    name = fields.String(required=True, validate=_NAME)


class WatchlistOrderSchema(Schema):
    swagger_example = {"ids": [1]}
    ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1)),
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"description": "Every one of your watchlist ids, in the new order"},
    )


class SymbolAddSchema(Schema):
    swagger_example = {"symbol": "AXISBANK", "position": 0}
    symbol = fields.String(required=True, validate=validate.Length(min=1, max=64))
    position = fields.Integer(
        load_default=None,
        strict=True,
        validate=validate.Range(min=0),
        metadata={"description": "0-based index; default: the end"},
    )


class SymbolsSetSchema(Schema):
    swagger_example = {"symbols": ["HDFCBANK", "ICICIBANK"]}
    symbols = fields.List(
        _SYMBOL,
        required=True,
        validate=validate.Length(max=100),
        metadata={"description": "The list's symbols in their new order (replaces the list)"},
    )


class WatchlistItemSchema(Schema):
    symbol = fields.String()
    position = fields.Integer()
    added_at = fields.DateTime()


class WatchlistSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    position = fields.Integer()
    symbols = fields.Method("_symbols", metadata={"description": "In display order"})
    items = fields.List(fields.Nested(WatchlistItemSchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _symbols(self, obj) -> list[str]:
        return [it.symbol for it in obj.items]
