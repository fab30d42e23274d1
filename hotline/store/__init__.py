"""The contact store: contact events, the contact projection, customers and call-backs
(SQLite or PostgreSQL).

`open_store(url)` gives a `Store` to read and write; producers write events through an `EventWriter`,
which batches them and keeps them on local disk while the database is away. docs/contacts.md explains
the model.
"""

from hotline.store.callbacks import Callback, CallbackStore, InvalidCallback
from hotline.store.db import Store, default_url, open_store, upgrade
from hotline.store.errors import StoreError, StoreUnavailable
from hotline.store.events import EVENT_TYPES, Contact, ContactEvent, Customer, Page, StoredEvent, new_event
from hotline.store.writer import EventWriter, default_spool_dir

__all__ = [
    "EVENT_TYPES",
    "Callback",
    "CallbackStore",
    "Contact",
    "ContactEvent",
    "Customer",
    "EventWriter",
    "InvalidCallback",
    "Page",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredEvent",
    "default_spool_dir",
    "default_url",
    "new_event",
    "open_store",
    "upgrade",
]
