"""The availability service's own figures (``common.metrics`` has what every service measures)."""

from prometheus_client import Gauge

STREAMS_OPEN = Gauge("availability_streams_open", "Day streams (server-sent events) open on this process")
