from lib.infers.bac import BACInfer  # noqa: F401
