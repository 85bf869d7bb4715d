"""The notifier's own figures (``common.metrics`` has what every service measures)."""

from prometheus_client import Counter

MAILS = Counter(
    "mails_total",
    "Mails handed to the SMTP server, by outcome: sent; refused (a 5xx for the address: never sent); "
    "retried (the server away, timing out or refusing for now: tried again later); duplicate (sent already)",
    ["outcome"],
)
