from services.common.migrations import run_env
from services.requests.models import RequestsBase

run_env(RequestsBase.metadata)
