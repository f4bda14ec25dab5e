from services.common.migrations import run_env
from services.directory.models import DirectoryBase

run_env(DirectoryBase.metadata)
