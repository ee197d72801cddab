"""One publishing pipeline for Prometheus rule files and the Alertmanager config.

The database holds the desired state. A single reconciler, run by the replica that holds
the publisher lease, compares what is desired with what is written on disk and what
Prometheus or Alertmanager report as loaded, and acts on whatever differs.
"""
