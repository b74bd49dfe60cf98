"""What runs inside a model-server instance: the SageMaker inference container contract."""
