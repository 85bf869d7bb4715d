from common.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "availability"
    http_port: int = 8082
    # A kept day answer is read afresh after this long even if no change of it was announced: the
    # bound on how far behind the counters an answer can be (docs/architecture.md).
    answer_max_age_seconds: float = 0.2
