"""User-facing errors: one clear message and a documented exit code, no traceback."""

EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_MODEL = 4
EXIT_ENVIRONMENT = 5
EXIT_INTERNAL = 70


class UserError(Exception):
    """A problem the user can fix; shown as one line, exit code per category."""

    exit_code = EXIT_DATA

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(UserError):
    exit_code = EXIT_USAGE


class DataError(UserError):
    exit_code = EXIT_DATA


class ModelError(UserError):
    exit_code = EXIT_MODEL


class EnvironmentProblem(UserError):
    exit_code = EXIT_ENVIRONMENT


def located(path, line=None, feature=None):
    """'file:line, feature X' prefix for messages about a place in the data."""
    where = str(path)
    if line is not None:
        where += f":{line}"
    if feature is not None:
        where += f", feature {feature!r}"
    return where
