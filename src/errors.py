"""The one exception type for bad user input."""


class ConfigError(ValueError):
    """Bad user input, found before any training starts.

    The message is one line that names the bad value and says what is accepted.
    """
