"""`selfsup explore RUN`: a local web page to look at what an encoder learned (a 2-D map of
the held-out samples, their neighbours, queries, near-duplicates, outliers, per-class kNN)."""
