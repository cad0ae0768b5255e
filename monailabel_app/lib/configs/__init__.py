"""Task configs selectable with ``--conf models <name>``."""

from lib.configs.bac import BAC

#: name -> TaskConfig class
CONFIGS = {"bac": BAC}
