from lib.trainers.bac import BACTrain  # noqa: F401
