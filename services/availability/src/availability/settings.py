from common.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "availability"
    http_port: int = 8082
    # A kept day answer is read afresh after this long even if no change of it was announced: the
    # bound on how far behind the counters an answer can be (docs/architecture.md).
    answer_max_age_seconds: float = 0.2
    # Streams of a day (GET /availability/stream): at most one answer per stream this often (a burst
    # of changes goes out as one); a change whose announcement was missed is seen this soon; a quiet
    # stream sends a comment this often, so that proxies and clients know it is alive.
    stream_min_interval_seconds: float = 0.1
    stream_recheck_seconds: float = 1.0
    stream_heartbeat_seconds: float = 15.0
