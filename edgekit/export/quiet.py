"""Converters narrate every step on stdout, loggers and warnings; an export prints only its table."""

import contextlib
import io
import logging
import os
import sys
import warnings


@contextlib.contextmanager
def quiet(*loggers: str):
    """Silence Python-level stdout, stderr (progress bars), warnings and the named loggers below ERROR."""
    saved = [(logger, logger.level) for logger in map(logging.getLogger, loggers)]
    for logger, _ in saved:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence what C++ libraries write straight to file descriptor 2 (absl's start-up lines)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
