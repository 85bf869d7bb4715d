from aiohttp import web

from shifts.service import ShiftsService

SERVICE = web.AppKey("shifts_service", ShiftsService)
