import sys
from pathlib import Path

from booking.app import create_app
from booking.settings import Settings
from common.web import dead_letter_commands, run_service

settings = Settings()
run_service(
    settings,
    create_app,
    sys.argv,
    Path(__file__).parent,
    settings.database_url,
    dead_letter_commands(settings, settings.queue_name),
)
