"""The comparison methods' own packages: imported on demand, versions recorded, output contained.

They are optional (``pip install 'scmint[baselines]'``) so the core install stays light: nothing
here imports them at module import time, and a missing one fails at model construction, before any
fitting, with the command that installs it.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
from collections.abc import Iterator
from importlib import metadata
from types import ModuleType

#: The command that installs every comparison method's package.
INSTALL_HINT = "pip install 'scmint[baselines]'"


class MissingPackageError(ImportError):
    """A comparison method's package is not installed (the message names the install command)."""


def require(module: str, method: str, distribution: str | None = None) -> ModuleType:
    """Import ``module`` for ``method``, or fail with the extra that provides it.

    Args:
        module: the import name (e.g. ``"scvi"``).
        method: the scmint method that needs it, for the message.
        distribution: the pip name when it differs from the import name (e.g. ``"scvi-tools"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingPackageError(
            f"model {method} needs the package {distribution or module!r}, which is not importable "
            f"({error}). Install the comparison methods with: {INSTALL_HINT}"
        ) from error


def version(distribution: str) -> str:
    """Installed version of a distribution ("absent" when it is not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@contextlib.contextmanager
def captured_stdout(log: logging.Logger, what: str) -> Iterator[None]:
    """Send a package's prints (MOFA's banners, Scanorama's progress) to ``log`` at DEBUG level.

    Some of these packages print to stdout with no way to silence them; inside a sweep that noise
    would bury scmint's own summary lines.
    """
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        text = buffer.getvalue().strip()
        if text:
            log.debug("%s printed:\n%s", what, text)
