"""The original SyRPC's syrpc.common, as far as its users touch it: the
exceptions and the logger ``lg`` (the docs' examples call cmn.lg.info)."""

import logging

from .errors import EmptyException, QueueNotFoundException

__all__ = ["EmptyException", "QueueNotFoundException", "lg"]

lg = logging.getLogger("syrpc")
