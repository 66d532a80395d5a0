"""The hot path of on-demand CPU profiling: which requests get a profiler, and their folded stacks.

A host-app request is profiled only while a session targets this worker (``Collector.active``)
or when an admin asks ``?_profile=1`` for the request's own report; pyinstrument samples
only the thread that starts it, so each request gets a Profiler started and stopped in its
own thread. Each request's samples are folded into the worker's call stacks with the
per-thread root frame dropped, so that stacks from every thread and worker merge.
"""
import os
import sys
import threading

from pyinstrument import Profiler

from ...auth.session import request_user
from .render import html, report_response

#: The query string that turns one host-app request into its own pyinstrument report (admins).
PROFILE_QUERY = b"_profile=1"
#: Sampling interval for a single-request report: fine, since one request is short and costs little.
PAGE_INTERVAL = 0.0001
#: Distinct call stacks one worker keeps per session; later new stacks are dropped.
MAX_STACKS = 20_000
#: pyinstrument's per-thread root frame identifier looks like ``name\x00<thread>\x00ident``.
THREAD_FRAME = "\x00<thread>\x00"


def drop_thread_root(stack):
    """Return the call stack without pyinstrument's per-thread root frame."""
    return stack[1:] if stack and THREAD_FRAME in stack[0] else stack


def start_profiler(interval):
    """Return a started Profiler for one request (in the request's thread)."""
    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start(caller_frame=sys._getframe(1))
    return profiler


class Collector:
    """This worker's part in the running session (the stacks of the requests it profiled), and
    the timing point's probe.

    The timing point (``web/hooks.py``) reads ``active`` and ``marker`` only, plain attributes:
    a request that passes gets :meth:`wrap`, which still checks who asked.
    """

    #: The query string of a request that may be profiled for its own report.
    marker = PROFILE_QUERY

    def __init__(self, interval):
        self.interval = interval
        #: The session this worker profiles for; None keeps the request probe idle.
        self.active = None
        self.lock = threading.Lock()
        self.reset()
        os.register_at_fork(after_in_child=self._forked)

    def reset(self):
        self.stacks = {}
        self.requests = 0
        self.samples = 0
        self.cpu_time = 0.0
        self.start_call_stack = None
        self.truncated = False

    def _forked(self):
        self.active = None
        self.lock = threading.Lock()
        self.reset()

    def join(self, session_id):
        """Start collecting for ``session_id`` from nothing."""
        with self.lock:
            self.reset()
            self.active = session_id

    def leave(self):
        """Stop collecting and drop what was collected."""
        with self.lock:
            self.active = None
            self.reset()

    def take(self):
        """Stop collecting; return this worker's part (JSON-ready) of the session."""
        with self.lock:
            part = {"requests": self.requests, "samples": self.samples, "cpu_time": self.cpu_time,
                    "truncated": self.truncated, "start_call_stack": self.start_call_stack,
                    "stacks": [[list(stack), seconds] for stack, seconds in self.stacks.items()]}
            self.active = None
            self.reset()
        return part

    def fold(self, session, session_id):
        """Fold one request's pyinstrument session into the stacks of ``session_id``."""
        with self.lock:
            if self.active != session_id:
                return
            stacks = self.stacks
            for stack, seconds in session.frame_records:
                key = tuple(drop_thread_root(stack))
                if key in stacks:
                    stacks[key] += seconds
                elif len(stacks) < MAX_STACKS:
                    stacks[key] = seconds
                else:
                    self.truncated = True
            if self.start_call_stack is None:
                self.start_call_stack = drop_thread_root(session.start_call_stack)
            self.requests += 1
            self.samples += session.sample_count
            self.cpu_time += session.cpu_time

    def wrap(self, req, dispatch):
        """Return ``dispatch``, wrapped to run under a profiler when this request is to be profiled."""
        token = self.begin(req)
        if token is None:
            return dispatch

        def profiled():
            try:
                response = dispatch()
            except BaseException:
                self.end(token, None)
                raise
            return self.end(token, response)
        return profiled

    def begin(self, req):
        """Return ``(profiler, session_id)`` for a request to profile (session_id None: its own report)."""
        query = req.query_string
        if query and PROFILE_QUERY in query and req.args.get("_profile") == "1" \
                and (user := request_user()) is not None and user.can("admin"):
            return start_profiler(PAGE_INTERVAL), None
        session_id = self.active
        return (start_profiler(self.interval), session_id) if session_id else None

    def end(self, token, response):
        """Stop the request's profiler; answer its report for ``?_profile=1``, else ``response``."""
        profiler, session_id = token
        session = profiler.stop()
        if session_id is not None:
            self.fold(session, session_id)
            return response
        return response if response is None else report_response(html(session))
