import sys
from pathlib import Path

from common.web import run_service
from gateway.app import create_app
from gateway.settings import Settings

settings = Settings()
run_service(settings, create_app, sys.argv, Path(__file__).parent, settings.database_url)
