"""What the local root reports to monitoring systems: a Prometheus exposition and Grafana dashboards."""
