"""The learning loop: evaluation cases, lessons and their application, the candidate frontier
and the promotion gate."""
