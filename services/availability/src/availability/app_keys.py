from aiohttp import web

from availability.rebuild import Rebuilder
from common.capacity import CapacityStore

STORE = web.AppKey("capacity_store", CapacityStore)
REBUILDER = web.AppKey("rebuilder", Rebuilder)
