"""House-price MLOps platform: the Dagster code location (`definitions`) and its pure core.

Importing this package imports nothing heavy: serving imports `mlops_assets.core` and
`mlops_assets.settings` without Dagster.
"""
