"""SageMaker's built-in algorithms, each run as a job process (``python -m <package>``).

Every algorithm package reads the SageMaker container contract (``SAGEMAKER_BASE_DIR`` or
``/opt/ml``, the ``SM_*`` variables), trains, writes its model under the model dir and, when it
fails, a one-line reason into ``<base>/output/failure``. Their ``__init__`` modules stay free of
heavy imports so the server can read metric definitions without loading the algorithm.
"""

__all__: list[str] = []
