"""The password policy, and one-time passwords handed out by administrators."""

import secrets

from services.common.errors import FieldError, InvalidInput

MIN_LENGTH = 12
# The commonest choices that pass a length rule; a long list belongs in a breach corpus.
BLOCKLIST = frozenset(
    {
        "password1234",
        "passwordpassword",
        "123456789012",
        "qwertyuiopas",
        "letmeinletmein",
        "welcome12345",
        "changeme1234",
        "administrator",
        "cwscmscwscms",
        "california123",
        "sacramento123",
        "iloveyou1234",
        "1q2w3e4r5t6y",
        "qwerty123456",
        "cwshub-demo12",
    }
)


def check_policy(password: str, *, username: str, field: str = "new_password") -> None:
    """At least 12 characters, not the username, not a well-known choice."""
    problem = None
    if len(password) < MIN_LENGTH:
        problem = f"must be at least {MIN_LENGTH} characters"
    elif username.lower() in password.lower():
        problem = "must not contain the username"
    elif password.lower() in BLOCKLIST:
        problem = "is too common; choose another"
    if problem:
        raise InvalidInput(f"The password {problem}.", errors=[FieldError(field, problem)])


def one_time_password() -> str:
    """A random password for the administrator to pass on; it must be changed at first use."""
    return secrets.token_urlsafe(12)
