"""Converters narrate every step on stdout, loggers and warnings; an export prints only its table."""

import contextlib
import io
import logging
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
