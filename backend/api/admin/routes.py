"""Admin namespace (role ``admin``): users, audit log, risk controls and operations."""

from flask_restx import Namespace, Resource

from backend.api.admin.schemas import (
    AccountStateSchema,
    AdminUserSchema,
    AuditEntrySchema,
    AuditQuerySchema,
    AuditVerifySchema,
    BrokerStatusSchema,
    CacheFlushResultSchema,
    CacheFlushSchema,
    CacheStatsSchema,
    ConfigSchema,
    FeedStatusSchema,
    HealthSchema,
    JobsStatusSchema,
    KillSwitchSchema,
    KillSwitchUpdateSchema,
    UserListQuerySchema,
    UserUpdateSchema,
    VersionSchema,
)
from backend.api.common import ListQuerySchema, decode_cursor, no_body, page_limit, responds, use_schema
from backend.api.security import current_user, require_role
from backend.services import admin_ops, audit, users

ns = Namespace("admin", description="Operators: users, audit log, risk and operations", validate=False)


@ns.route("/users")
class Users(Resource):
    @require_role("admin")
    @use_schema(UserListQuerySchema, location="query", arg="query")
    @responds(AdminUserSchema, paged=True)
    def get(self, query):
        """List and search users."""
        return users.list_users(query["q"], page_limit(query["limit"]), decode_cursor(query["cursor"]))


@ns.route("/users/<int:user_id>")
class UserItem(Resource):
    @require_role("admin")
    @responds(AdminUserSchema)
    def get(self, user_id):
        """One user."""
        return users.get_user(user_id)

    @require_role("admin")
    @use_schema(UserUpdateSchema)
    @responds(AdminUserSchema)
    def patch(self, user_id, data):
        """Change role or activate/deactivate (deactivation revokes every token). Audited."""
        return users.update_user(current_user(), user_id, data.get("role"), data.get("is_active"))


@ns.route("/audit")
class Audit(Resource):
    @require_role("admin")
    @use_schema(AuditQuerySchema, location="query", arg="query")
    @responds(AuditEntrySchema, paged=True)
    def get(self, query):
        """Filter the audit log by user, action and time."""
        return users.list_audit(
            query["user_id"],
            query["action"],
            query["from_"],
            query["to"],
            page_limit(query["limit"]),
            decode_cursor(query["cursor"]),
        )


@ns.route("/audit/verify")
class AuditVerify(Resource):
    @require_role("admin")
    @responds(AuditVerifySchema)
    def get(self):
        """Recompute the hash chain and report the first broken row, if any."""
        return audit.verify_chain()


# --- risk -----------------------------------------------------------------------------------------


@ns.route("/risk/kill-switch")
class KillSwitch(Resource):
    @require_role("admin")
    @responds(KillSwitchSchema)
    def get(self):
        """The platform-wide kill switch."""
        return admin_ops.kill_switch_status()

    @require_role("admin")
    @use_schema(KillSwitchUpdateSchema)
    @responds(KillSwitchSchema)
    def put(self, data):
        """Halt (on=true) or resume trading on every account. Audited."""
        return admin_ops.set_kill_switch(current_user(), data["on"], data["reason"])


@ns.route("/risk/accounts")
class RiskAccounts(Resource):
    @require_role("admin")
    @use_schema(ListQuerySchema, location="query", arg="query")
    @responds(AccountStateSchema, paged=True)
    def get(self, query):
        """Every trading account with its effective trading state and circuit breaker."""
        return admin_ops.account_states(page_limit(query["limit"]), decode_cursor(query["cursor"]))


@ns.route("/risk/accounts/<int:account_id>/reset-breaker")
class RiskReset(Resource):
    @require_role("admin")
    @no_body
    @responds(AccountStateSchema)
    def post(self, account_id):
        """Clear today's automatic circuit-breaker trip of one account. Audited."""
        return admin_ops.reset_breaker(current_user(), account_id)


# --- operations -----------------------------------------------------------------------------------


@ns.route("/ops/health")
class OpsHealth(Resource):
    @require_role("admin")
    @responds(HealthSchema)
    def get(self):
        """Every component (database, Redis, feed, broker, jobs, workers, alerts) with a status."""
        return admin_ops.health()


@ns.route("/ops/cache")
class OpsCache(Resource):
    @require_role("admin")
    @responds(CacheStatsSchema)
    def get(self):
        """Cache backend, size and hit/miss counters per namespace (this process)."""
        return admin_ops.cache_stats()


@ns.route("/ops/cache/flush")
class OpsCacheFlush(Resource):
    @require_role("admin")
    @use_schema(CacheFlushSchema)
    @responds(CacheFlushResultSchema)
    def post(self, data):
        """Flush the whole cache or one namespace (e.g. "quote"). Audited."""
        return admin_ops.cache_flush(current_user(), data["namespace"])


@ns.route("/ops/feed")
class OpsFeed(Resource):
    @require_role("admin")
    @responds(FeedStatusSchema)
    def get(self):
        """Live feed status as seen by this worker: leader, lag, last tick age, restarts."""
        return admin_ops.feed_status()


@ns.route("/ops/feed/restart")
class OpsFeedRestart(Resource):
    @require_role("admin")
    @no_body
    @responds(FeedStatusSchema)
    def post(self):
        """Restart the feed producer (on the leader; the watchdog starts a new one). Audited."""
        return admin_ops.feed_restart(current_user())


@ns.route("/ops/jobs")
class OpsJobs(Resource):
    @require_role("admin")
    @responds(JobsStatusSchema)
    def get(self):
        """Job queue depth by status and the most recent failed jobs."""
        return admin_ops.jobs_status()


@ns.route("/ops/broker")
class OpsBroker(Resource):
    @require_role("admin")
    @responds(BrokerStatusSchema)
    def get(self):
        """Broker circuit state."""
        st = admin_ops.broker_status()
        return {"status": admin_ops.broker_circuit_state(st), "details": st}


@ns.route("/ops/config")
class OpsConfig(Resource):
    @require_role("admin")
    @responds(ConfigSchema)
    def get(self):
        """Effective configuration with every secret redacted."""
        return {"config": admin_ops.redacted_config()}


@ns.route("/ops/version")
class OpsVersion(Resource):
    @require_role("admin")
    @responds(VersionSchema)
    def get(self):
        """Version, uptime, Python and key package versions."""
        return admin_ops.version_info()
