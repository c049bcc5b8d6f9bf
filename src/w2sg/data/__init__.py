"""Data: splits with content-hash ids, loading of user arrays, the synthetic generator, datasets."""
