import sys
from pathlib import Path

from common.web import dead_letter_commands, run_service
from shifts.app import create_app
from shifts.settings import Settings

settings = Settings()
run_service(
    settings,
    create_app,
    sys.argv,
    Path(__file__).parent,
    settings.database_url,
    dead_letter_commands(settings, settings.queue_name),
)
