"""The learning loop: cases, lessons, the frontier, the gate, teacher and student runs."""
