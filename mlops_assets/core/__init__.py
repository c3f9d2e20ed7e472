"""The pure core: schema, cleaning and features (pandas/numpy only, no framework imports)."""
