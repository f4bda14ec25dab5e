"""The directory's routes, one module per resource; thin, the rules live in domain modules."""

from services.directory.api import calendars, clients, counties, internal, users

routers = [counties.router, users.router, clients.router, calendars.router, internal.router]
