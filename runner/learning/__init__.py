"""The learning loop: evaluation cases, lessons, candidate frontier and promotion gate."""
