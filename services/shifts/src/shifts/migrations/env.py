from common.migrations import run_env
from shifts.adapters.db import Base

run_env(Base.metadata)
