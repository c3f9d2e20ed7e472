"""Machine learning around the core: drift, training, explanations and the model registry.

No Dagster here; `registry` is also what serving uses to load the champion."""
