"""The compiler: workflow sources (YAML, JSON, Starlark) -> document -> validated IR."""
