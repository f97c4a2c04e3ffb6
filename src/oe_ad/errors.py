"""User-facing errors: raised with a one-line message that names the bad key or file."""


class OEADError(Exception):
    """A problem the user can fix (bad config value, missing or corrupt data); printed as one line."""


class Interrupted(BaseException):
    """The process got SIGTERM (``kill PID``, a scheduler's time limit or ``scancel``): the job stops where it is.

    A ``BaseException``, like ``KeyboardInterrupt``: no ``except Exception`` on the way out records it as a failed
    job. Whoever knows more adds it on the way: the epoch (``callbacks.EpochSummary``), what a re-run of the same
    command does (``run.run_task``). Printed as one ``error:`` line; the exit code is 143 (128 + SIGTERM).
    """

    exit_code = 143

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.epoch: str | None = None  # "3/40" when it came during training
        self.rerun = "start again"  # what re-running the same command does

    def __str__(self) -> str:
        during = f" during epoch {self.epoch}" if self.epoch else ""
        return f"interrupted ({self.signal_name}){during}: re-run the same command to {self.rerun}"
