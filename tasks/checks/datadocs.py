"""The Great Expectations context and the Data Docs site built from it.

Contract: :func:`gx_context` returns an in-memory (ephemeral) GX context: no ``gx/`` folder,
no analytics, no progress bars; the suites and validation results a run adds to it stay in
memory. :func:`build_data_docs` renders them as the static Data Docs site into a folder the
caller chooses (the stage passes a temporary folder it moves into place) and returns its
``index.html``, raising :class:`tasks.core.common.PipelineError` when GX made none. GX is
imported only inside these functions.
"""
from __future__ import annotations

import os
from pathlib import Path

from tasks.core.common import PipelineError

DATA_DOCS_SITE = "rnnflow"


def gx_context():
    """An in-memory GX context: no gx/ folder, no analytics, no progress bars."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def build_data_docs(context, out_dir: str | Path) -> Path:
    """Render the context's suites and validation results as GX Data Docs into ``out_dir``."""
    out_dir = Path(out_dir).resolve()
    context.add_data_docs_site(
        DATA_DOCS_SITE,
        {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    context.build_data_docs(site_names=[DATA_DOCS_SITE])
    index = out_dir / "index.html"
    if not index.exists():
        raise PipelineError(f"validate: GX Data Docs did not produce {index}")
    return index
