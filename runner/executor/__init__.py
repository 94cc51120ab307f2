"""The executor: runs a compiled workflow on asyncio, with the pure decisions kept apart."""
