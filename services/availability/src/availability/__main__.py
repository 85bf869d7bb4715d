import sys
from functools import partial

from availability.app import create_app, rebuild_command, reconcile_command
from availability.settings import Settings
from common.web import run_service

settings = Settings()
run_service(
    settings,
    create_app,
    sys.argv,
    commands={
        "rebuild": partial(rebuild_command, settings),
        "reconcile": partial(reconcile_command, settings),
    },
)
