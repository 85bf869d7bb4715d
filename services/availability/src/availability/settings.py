from pydantic import model_validator

from common.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "availability"
    http_port: int = 8082
    # A kept day answer is read afresh after this long even if no change of it was announced: the
    # bound on how far behind the counters an answer can be (docs/architecture.md).
    answer_max_age_seconds: float = 0.2
    # Of that bound, how long the public entry may keep an answer (it is told with each one); the
    # service keeps its own for the rest, so that the two together never exceed the bound. 0: the
    # entry keeps nothing.
    edge_keep_seconds: float = 0.05
    # Streams of a day (GET /availability/stream): at most one answer per stream this often (a burst
    # of changes goes out as one); a change whose announcement was missed is seen this soon; a quiet
    # stream sends a comment this often, so that proxies and clients know it is alive.
    stream_min_interval_seconds: float = 0.1
    stream_recheck_seconds: float = 1.0
    stream_heartbeat_seconds: float = 15.0

    @model_validator(mode="after")
    def _edge_keeps_a_part_of_the_bound(self) -> "Settings":
        if not 0 <= self.edge_keep_seconds < self.answer_max_age_seconds:
            raise ValueError("EDGE_KEEP_SECONDS must be at least 0 and less than ANSWER_MAX_AGE_SECONDS")
        return self
