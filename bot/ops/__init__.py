"""Running the bot as a service: logging, Prometheus metrics, the health endpoint."""
