"""modelyard.transform: batch transform jobs (CreateTransformJob and friends)."""
