"""Price/indicator/P&L/signal alerts: rule kinds, evaluation engines and webhook signing (pure)."""

from backend.domain.alerts.engine import AlertEngine, Firing, NaiveAlertEngine
from backend.domain.alerts.rules import RULE_KINDS, AlertRule, RuleKind
from backend.domain.alerts.state import RuleState

__all__ = ["RULE_KINDS", "AlertEngine", "AlertRule", "Firing", "NaiveAlertEngine", "RuleKind", "RuleState"]
