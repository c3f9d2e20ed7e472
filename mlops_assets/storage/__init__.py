"""Storage: the SQL warehouse and the object store, each addressed by a URL."""
