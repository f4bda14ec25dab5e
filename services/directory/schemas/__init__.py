"""The directory's API contract, one module per part; every name is importable from here."""

from services.directory.schemas.calendars import *  # noqa: F403
from services.directory.schemas.contacts import *  # noqa: F403
from services.directory.schemas.counties import *  # noqa: F403
from services.directory.schemas.identity import *  # noqa: F403
from services.directory.schemas.users import *  # noqa: F403
