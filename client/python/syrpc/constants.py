"""The original SyRPC's constants that still mean something here."""


class General(object):
    """General constants"""
    APP_NAME = 'syrpc'
    TIMEOUT = None      # seconds; None: wait without limit


class AMQ(object):
    """The original's queue settings, and what they are here"""
    TTL = 3 * 60 * 60   # amq_ttl: the app's request_ttl (the extension's default too)
    MSG_TTL = 10        # amq_msg_ttl: the app's result_ttl (the extension's default too)
    NUM_QUEUES = 64     # the result table's partitions (fixed)
