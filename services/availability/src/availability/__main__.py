import sys

from availability.app import create_app
from availability.settings import Settings
from common.web import run_service

run_service(Settings(), create_app, sys.argv)
