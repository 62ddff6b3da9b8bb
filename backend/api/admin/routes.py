"""Admin namespace (role ``admin``): users and the audit log."""

from flask_restx import Namespace, Resource

from backend.api.admin.schemas import (
    AdminUserSchema,
    AuditEntrySchema,
    AuditQuerySchema,
    AuditVerifySchema,
    UserListQuerySchema,
    UserUpdateSchema,
)
from backend.api.common import decode_cursor, page_limit, responds, use_schema
from backend.api.security import current_user, require_role
from backend.services import audit, users

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
