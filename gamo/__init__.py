"""GAMO Lab engine: Generative Adversarial Minority Oversampling (Mullick, Datta & Das, ICCV 2019).

Importing ``gamo`` is light; the training loop lives in :mod:`gamo.train`.
"""
from gamo.config import DataConfig, ModelConfig, RunConfig, TrainConfig
from gamo.errors import ConfigError, DataError, GamoError

__all__ = ["DataConfig", "ModelConfig", "RunConfig", "TrainConfig", "ConfigError", "DataError", "GamoError"]
__version__ = "0.1.0"
