"""Catalog separation on Apache Beam: ``separate`` spread over workers, resumable, with a results manifest.

Importing this package does not import Beam or TensorFlow; :func:`run_catalog` does.
"""
from .job import CatalogJob, CatalogSummary

__all__ = ["CatalogJob", "CatalogSummary", "run_catalog"]


def run_catalog(*args, **kwargs):
    """See :func:`spleeter_ext.catalog.pipeline.run_catalog`."""
    from .pipeline import run_catalog as run

    return run(*args, **kwargs)
