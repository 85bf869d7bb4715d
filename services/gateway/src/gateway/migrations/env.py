from common.migrations import run_env
from gateway.adapters.db import Base

run_env(Base.metadata)
