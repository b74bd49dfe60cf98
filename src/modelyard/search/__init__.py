"""modelyard.search: the SageMaker Search operation over registered resource kinds."""
