"""Sub-commands of the ``monai-bac`` command line (see :mod:`monai_bac.cli`)."""
