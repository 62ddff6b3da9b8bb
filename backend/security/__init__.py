"""Credentials: password hashing, JWTs, API keys, revocation and the broker token store."""
