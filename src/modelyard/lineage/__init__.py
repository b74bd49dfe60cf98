"""modelyard.lineage: artifacts, actions, contexts, associations and QueryLineage."""
