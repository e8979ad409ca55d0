"""The exception types a user meets: bad input, and a stop asked for by a signal; and the
one-line messages they carry."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """Bad user input, found before any training starts.

    The message is one line that names the bad value and says what is accepted.
    """


class Terminated(KeyboardInterrupt):
    """A stop asked for by SIGTERM: what SLURM and most schedulers send before they kill a job.

    A KeyboardInterrupt, so that everything that ends its runs KILLED on Ctrl-C does the same.
    """


def stop_reason(stop: KeyboardInterrupt) -> str:
    """What stopped the process, for the runs it leaves KILLED."""
    return str(stop) if isinstance(stop, Terminated) else "stopped by Ctrl-C (SIGINT)"


def one_line(err: BaseException | str, limit: int = 160) -> str:
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def why(err: BaseException, path: Any = None, limit: int = 120) -> str:
    """`Type: message` of an error, on one line, without the path the message repeats."""
    text = str(err)
    if path is not None:
        for quoted in (f": '{path}'", f"'{path}'", f"{path}"):
            text = text.replace(quoted, "")
    text = one_line(text.strip(" :"), limit)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
