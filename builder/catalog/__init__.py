"""The catalog of built images: the SQLite store, and export/merge between catalogs."""
