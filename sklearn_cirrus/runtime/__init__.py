"""The runtime: the stateless worker and the driver that keeps workers in flight."""
