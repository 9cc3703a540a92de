"""Spark Structured Streaming jobs: 5-minute traffic windows, the zone mobility index, anomaly flags.

Each job reads the stream topics (Kafka, or the embedded file bus), counts each event once in its 5-minute window
under a watermark, and writes through ``foreachBatch``: idempotent upserts into the database, derived CloudEvents
onto the bus. ``smartcity streaming run`` runs them locally; ``infra/spark/`` runs them on a cluster.
"""
