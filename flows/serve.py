"""Serve the rnnflow flow on its nightly schedule without a work pool: ``python -m flows.serve``.

The schedule and parameters are those of the ``rnnflow-nightly`` deployment in
``prefect.yaml``, so the two ways of scheduling cannot disagree. Runs start in this
process's working directory: start it from the checkout root. Stop it with Ctrl-C.
"""
import argparse
from pathlib import Path
from typing import Any

import yaml

from flows.dvcstages import find_root
from flows.pipeline import rnnflow_pipeline

DEPLOYMENT = "rnnflow-nightly"
SERVED_NAME = "rnnflow-served"


def deployment_spec(root: str | Path, name: str = DEPLOYMENT) -> dict[str, Any]:
    """The deployment ``name`` from ``prefect.yaml`` in ``root``."""
    spec = yaml.safe_load((Path(root) / "prefect.yaml").read_text()) or {}
    for deployment in spec.get("deployments") or []:
        if deployment.get("name") == name:
            return deployment
    raise ValueError(f"{root}/prefect.yaml has no deployment named {name!r}")


def schedules(spec: dict[str, Any]) -> list:
    """Prefect schedules for the cron entries of a prefect.yaml deployment."""
    from prefect.schedules import Cron

    return [Cron(entry["cron"], timezone=entry.get("timezone"), active=entry.get("active", True))
            for entry in spec.get("schedules") or [] if "cron" in entry]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default=SERVED_NAME, help=f"deployment name (default {SERVED_NAME})")
    args = parser.parse_args(argv)
    spec = deployment_spec(find_root())
    rnnflow_pipeline.serve(
        name=args.name,
        schedules=schedules(spec),
        parameters=spec.get("parameters") or {},
        tags=spec.get("tags") or [],
        description=spec.get("description"),
        limit=1,
    )


if __name__ == "__main__":
    main()
