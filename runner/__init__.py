"""Branchleaf: a headless CI runner for branch-and-leaf LLM-agent workflows."""

__version__ = "0.1.0"
