"""Floor 4: a validated connector becomes a dlt source. dlt and ``requests`` only, no Dagster.

``source`` builds it, ``http`` is the session every request goes through, ``pages`` checks each
page, ``fetch`` reads offset pages concurrently and regroups flat records as Arrow batches.
"""
