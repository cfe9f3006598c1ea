"""Pods on one machine: processes in their own mount, UTS and PID namespaces, each with private
directories, sharing only 127.0.0.1 (PostgreSQL, the demo API), as runs on Kubernetes share only
the network. ``namespaces`` starts and kills them; ``launcher`` is a Dagster run launcher that runs
each run in one (what ``K8sRunLauncher``'s Job does); ``deployment`` is the world the pod scenarios
run in (a daemon, PostgreSQL for the instance and the warehouse, the API)."""
