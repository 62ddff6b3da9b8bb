"""Option pricing (Black–Scholes–Merton), chain types and chain analytics."""
