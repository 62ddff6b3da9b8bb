"""Built-in signal strategies (filled in next)."""
