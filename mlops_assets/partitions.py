"""Batches are dynamic partitions: the ingestion sensor adds one per batch the source hands out."""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition

batch_partitions = DynamicPartitionsDefinition(name="batches")


def batch_key(batch_number: int) -> str:
    """Partition key and warehouse batch_id of batch n: zero-padded so keys sort as numbers."""
    return f"{batch_number:05d}"


def batch_number(key: str) -> int:
    return int(key)
