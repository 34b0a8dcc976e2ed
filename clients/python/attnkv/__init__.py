"""attnkv: a Python client for attnkvd, the fuzzy key/value daemon.

    >>> from attnkv import Database
    >>> db = Database({'sphere': 'shape', 'cat': 'animal'})
    >>> db.query('rhombus')[0]
    'shape'

Database (attnkv.client) wraps a redis.Redis; error replies become the
exceptions of attnkv.errors. See clients/python/README.md in the attnkv
repository.
"""

from .client import Database, Explained, Hit, Pairs, Valued
from .errors import Error, InvalidTextError, UnknownWordError

__all__ = ["Database", "Explained", "Hit", "Pairs", "Valued", "Error", "InvalidTextError",
           "UnknownWordError"]

# The same as pyproject.toml's, and the daemon's.
__version__ = "0.1.0"
