from lib.activelearning.strategies import HighestScore  # noqa: F401
