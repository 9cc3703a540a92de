"""smartcity: the code the platform's functions, jobs and commands have in common."""

__version__ = "0.1.0"
