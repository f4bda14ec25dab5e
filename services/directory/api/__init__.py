"""The directory's routes, one module per resource; thin, the rules live in domain modules."""

from services.directory.api import calendars, clients, contacts, counties, internal, users

routers = [
    counties.router,
    contacts.router,
    users.router,
    users.region_staff,
    clients.router,
    calendars.router,
    internal.router,
]
