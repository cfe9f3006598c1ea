"""The chaos soak (``python3 scripts/dev.py soak``): syncs through random faults, kills and
upstream changes, compared with the API's truth after every cycle. See docs/reliability.md."""
