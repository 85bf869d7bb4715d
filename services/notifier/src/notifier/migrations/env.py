from common.migrations import run_env
from notifier.adapters.db import Base

run_env(Base.metadata)
