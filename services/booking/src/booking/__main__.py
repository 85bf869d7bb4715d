import sys
from functools import partial
from pathlib import Path

from booking.app import audit_command, create_app, rebuild_command, reconcile_command
from booking.settings import Settings
from common.web import dead_letter_commands, run_service

settings = Settings()
run_service(
    settings,
    create_app,
    sys.argv,
    Path(__file__).parent,
    settings.database_url,
    {
        "audit": partial(audit_command, settings),
        "rebuild": partial(rebuild_command, settings),
        "reconcile": partial(reconcile_command, settings),
        **dead_letter_commands(settings, settings.queue_name),
    },
)
