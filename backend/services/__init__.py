"""Use cases and transactions. They raise domain errors and never import API schemas."""
