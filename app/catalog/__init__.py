"""The file catalog: which files exist, where they live, and who may ask for them."""
