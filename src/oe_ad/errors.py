"""User-facing errors: raised with a one-line message that names the bad key or file."""


class OEADError(Exception):
    """A problem the user can fix (bad config value, missing or corrupt data); printed as one line."""
