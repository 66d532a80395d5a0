"""Log records as logging makes them: one record-factory wrapper per process, and who watches them.

A capability that needs to see log records (the log stream, exceptions logged outside a
request) registers a watcher here instead of adding a handler: a handler on the root logger
would change the host's logging (``logging.basicConfig()`` does nothing once the root has a
handler; Flask's, werkzeug's and Python's last-resort stderr output step aside for any
handler they find). The wrapper sees every record a logger's level lets through, and calls
each watcher with it.

Watchers are kept by name, one each: a later ``watch`` of the same name (a second app in the
process, a worker after a fork) replaces the one before.
"""
import logging

#: The watchers by name, called in the order they were first registered; ``_calls`` is their tuple.
_watchers = {}
_calls = ()


def watch(name, callback):
    """Call ``callback(record)`` for each log record made from now on (replacing the watcher ``name``)."""
    global _calls
    _watchers[name] = callback
    _calls = tuple(_watchers.values())
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "monitor_records", False):
        logging.setLogRecordFactory(_watching(factory))


def _watching(make_record):
    """Wrap a record factory so that every watcher sees each record it makes."""
    def make_and_watch(*args, **kwargs):
        record = make_record(*args, **kwargs)
        if record.name:  # logging.makeLogRecord() first makes a record without a name or level: not a log call
            for callback in _calls:
                callback(record)
        return record
    make_and_watch.monitor_records = True
    return make_and_watch
