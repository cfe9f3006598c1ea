"""Floor 1: what can go wrong, and keeping secrets out of it. Imports nothing else of restsync.

``errors`` holds the one exception hierarchy (transience is a property of each class), ``classify``
turns any exception chain into a :class:`~restsync_dagster.failures.classify.SyncFailure`, and
``redaction`` masks credentials by name and by value.
"""
