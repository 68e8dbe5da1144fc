"""The one exception family. Messages name the file, layer or option, and the fix."""


class NeurodeployError(Exception):
    """Base class: the CLI prints the message without a traceback and exits non-zero."""


class ConfigError(NeurodeployError):
    """A recipe, option or run directory is wrong."""


class EnvError(NeurodeployError):
    """The gymnasium environment cannot be used (unknown id, wrong spaces, bad observations)."""


class CheckpointError(NeurodeployError):
    """A checkpoint or policy file is missing, corrupt or does not match."""


class ExportError(NeurodeployError):
    """The model cannot be represented on the requested target."""


class BundleError(NeurodeployError):
    """A deploy bundle is incomplete, corrupt or does not fit the request."""


class StackError(NeurodeployError):
    """A part of the software stack (Lava, lava-dl, ...) is missing or broken."""


class SweepError(NeurodeployError):
    """A sweep had failed trials, or a sweep directory cannot be reported."""


class RecordError(NeurodeployError):
    """A recording cannot be written (file type, folder, renderer or encoder)."""


class MismatchWarning(RuntimeWarning):
    """A deploy bundle was written with --allow-mismatch: a fidelity check failed."""
