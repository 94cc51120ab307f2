"""The learning loop: lessons, their checks and their application to a compiled workflow."""
