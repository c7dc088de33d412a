"""Call handling of the ARI app: media on the 20 ms clock, AI sessions, tracking, recordings."""
