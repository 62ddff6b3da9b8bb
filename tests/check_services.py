"""Exit 0 when TEST_DATABASE_URL (PostgreSQL) and TEST_REDIS_URL answer, else 1. Used by `make test`."""

import os
import sys


def main() -> int:
    try:
        import psycopg
        import redis

        url = os.environ["TEST_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        redis.Redis.from_url(os.environ["TEST_REDIS_URL"], socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        sys.stderr.write(f"services not reachable: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
