"""The BentoML prediction service (`serving.service:HousePriceService`); imports no Dagster."""
