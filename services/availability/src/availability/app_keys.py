from aiohttp import web

from common.capacity import CapacityStore

STORE = web.AppKey("capacity_store", CapacityStore)
