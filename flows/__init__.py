"""Prefect orchestration of the DVC stages in ``dvc.yaml``."""
