from common.settings import ServiceSettings, database_url_field


class Settings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = 8084
    database_url: str = database_url_field("notifier", "appointments_notifier")
    queue_name: str = "notifier.booking-events"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_timeout_seconds: float = 10.0  # connecting, and each command
    smtp_data_timeout_seconds: float = 120.0  # the answer to a mail's data (adapters/smtp.py says why)
    mail_from: str = "Appointments <no-reply@appointments.example>"
    claim_lease_seconds: float = 20.0  # a claim not renewed for this long belongs to a notifier that died
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)  # SMTP down: wait this long before each retry
