"""What can go wrong in the contact store, each message naming the thing and the fix.

StoreError
 ├── InvalidEvent       a contact event that cannot be stored (unknown type, naive time, not JSON, ...)
 ├── InvalidPhone       a phone number that is not one (letters, empty, `+` in the middle)
 ├── InvalidCustomer    a customer record that cannot be imported (no id, the same phone twice, ...)
 ├── InvalidCursor      a page cursor that this store did not hand out
 ├── InvalidQuery       a query argument out of range (a limit of 0, an until before since, ...)
 ├── InvalidStoreURL    a database URL that names no supported backend
 ├── InvalidCallback    a call-back that cannot be stored (hotline.store.callbacks)
 ├── SchemaOutOfDate    the database is not at the schema this version needs (run `hotline db upgrade`)
 ├── StoreUnavailable   the database cannot be reached, is locked or does not answer (retry later)
 └── WriterStopped      an event was submitted to an event writer that is not running
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class InvalidEvent(StoreError, ValueError):
    pass


class InvalidPhone(StoreError, ValueError):
    pass


class InvalidCustomer(StoreError, ValueError):
    pass


class InvalidCursor(StoreError, ValueError):
    pass


class InvalidQuery(StoreError, ValueError):
    pass


class InvalidStoreURL(StoreError, ValueError):
    pass


class SchemaOutOfDate(StoreError):
    pass


class StoreUnavailable(StoreError):
    pass


class SpoolInUse(StoreError):
    pass


class WriterStopped(StoreError):
    pass
