"""Use cases the HTTP layer calls; they combine the catalog, the queue engine and storage."""
