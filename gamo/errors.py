"""Errors a user can cause. Their messages say what to change."""


class GamoError(Exception):
    """Base class of every error caused by user input (config, data, files)."""


class ConfigError(GamoError):
    """An invalid configuration value; the message names the field and the fix."""


class DataError(GamoError):
    """Data that cannot be used as asked; the message says how to fix it."""
