"""The names the services share, in one place: roles, tool permissions and event types.

They are `StrEnum`s, so a member is its string (`Role.OFFICE_ADMIN == "office_admin"`) in a
token's claims, a database column or a JSON body; code names them through these enums, never as
string literals, so a typo is an import error and a rename is one edit."""

from enum import StrEnum


class Role(StrEnum):
    """What a caller is, as the county says it."""

    OFFICE_ADMIN = "office_admin"  # the CWS/CMS office: administers every county
    SSC = "ssc"  # System Support Consultant: works the counties of a region
    COUNTY_ADMIN = "county_admin"  # administers its county's accounts
    COUNTY_USER = "county_user"  # a county's staff
    HELPDESK = "helpdesk"  # the help desk: files DDR tickets for any county
    COUNTY_SYSTEM = "county_system"  # a county's system over REST (client credentials)
    SERVICE = "service"  # one of our own services, acting without a user


class Kind(StrEnum):
    """What kind of caller a token is for (its `kind` claim). A receiver tells our own services
    (service) from a county's system or the help desk (client) by it, not by a role."""

    USER = "user"  # a person, signed in with a password
    CLIENT = "client"  # a county system or the help desk (client credentials)
    SERVICE = "service"  # one of our own services (client credentials, `service.<name>`)


class Perm(StrEnum):
    """Tool permissions: which kinds of request a county account may file and see."""

    MAC = "mac"
    DDR = "ddr"
    SCR = "scr"
    VPN = "vpn"
    SBC = "sbc"
    RELOCATION = "relocation"
    REPORTS = "reports"
    LINKAGES = "linkages"


class EventType(StrEnum):
    """Events a service publishes; their payloads are typed in services.common.events."""

    COUNTY_CHANGED = "county.changed"
    REQUEST_CREATED = "request.created"
    REQUEST_TRANSITIONED = "request.transitioned"
    REQUEST_COMMENTED = "request.commented"


COUNTY_ROLES = frozenset({Role.COUNTY_USER, Role.COUNTY_ADMIN})
# Office staff see every county (an SSC works a region of them; our services act for all).
OFFICE_ROLES = frozenset({Role.OFFICE_ADMIN, Role.SSC, Role.SERVICE})
