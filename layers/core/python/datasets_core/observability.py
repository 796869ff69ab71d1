"""Logger and metrics, built once for the whole process."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="datasets-api")
metrics = Metrics(namespace="DatasetsApi", service="datasets-api")
