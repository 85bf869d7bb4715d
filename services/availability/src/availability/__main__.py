import sys

from availability.app import create_app
from availability.settings import Settings
from common.web import run_service

settings = Settings()
run_service(settings, create_app, sys.argv)
