"""Over the wire: the real bot process against our fake Discord on 127.0.0.1."""
