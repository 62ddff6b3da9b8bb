"""Pure-Python core: no Flask imports anywhere below this package."""
