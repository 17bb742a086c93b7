from newsstream.sink.stores.base import *  # noqa: F401,F403  (split into one module per backend next)
from newsstream.sink.stores.base import _pg_value, _sqlite_value  # noqa: F401
