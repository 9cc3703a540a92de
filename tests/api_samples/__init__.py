"""The API's test data: a small sample city written through the real storage writers, and the streaming jobs'
windows of it computed in Python (test fixtures, not product code)."""
