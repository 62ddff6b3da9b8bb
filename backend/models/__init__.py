"""SQLAlchemy models: the only schema. Every change gets a migration in migrations/."""

from backend.models.alerts import AlertHistory, AlertRuleRow, AlertWebhookAttempt  # noqa: F401
from backend.models.audit import AuditLog
from backend.models.broker import BrokerConnection, BrokerOAuthState, BrokerToken  # noqa: F401
from backend.models.indices import IndexAllocation, IndexValue, PortfolioIndex  # noqa: F401
from backend.models.market import Candle, CandleCoverage, Instrument  # noqa: F401 (registers the tables)
from backend.models.signals import Signal, SignalMapping, SignalWebhook  # noqa: F401
from backend.models.strategies import BacktestJob, Deployment, DeploymentLog, EquitySnapshot, SavedStrategy  # noqa: F401
from backend.models.trading import LedgerEntry, Order, Position, Trade, TradingAccount  # noqa: F401
from backend.models.user import ApiKey, RefreshToken, RevokedToken, User
from backend.models.watchlists import Watchlist, WatchlistItem  # noqa: F401

__all__ = ["AuditLog", "ApiKey", "RefreshToken", "RevokedToken", "User"]
