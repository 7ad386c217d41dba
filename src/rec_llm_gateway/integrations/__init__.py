"""Framework glue. Each module imports its framework only when it is imported itself."""
