"""MLflow "models from code" entry point of the audio model: MLflow runs this file to build the pyfunc.

Logging the model from a file instead of a pickled object keeps cloudpickle out of saved models.
The class itself lives in :mod:`genrelib.inference.serving`.
"""

import mlflow

from genrelib.inference.serving import GenrePyfunc

mlflow.models.set_model(GenrePyfunc())
