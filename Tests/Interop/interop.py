"""What the pika interop scripts share (run_pika.py, pika_features.py).

Scenarios register in order with `@suite.scenario`; a check that fails raises `Failure`;
queue and exchange names are unique to the run (reruns against a long-lived RabbitMQ do
not collide); each scenario runs under its own time limit (SIGALRM) and its resources
are cleaned up under another; the runner prints PASS/FAIL per scenario and a summary line,
and returns 1 if any failed.
"""

import os
import signal
import time
import traceback
import uuid

import pika


class Failure(AssertionError):
    pass


class ScenarioTimeout(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Suite:
    CLEANUP_TIMEOUT = 15

    def __init__(self, prefix, label):
        self.run_id = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.label = label
        self.timeout = float(os.environ.get("CONDUCTOR_INTEROP_SCENARIO_TIMEOUT", "30"))
        self.scenarios = []

    def scenario(self, fn):
        self.scenarios.append(fn)
        return fn

    def name(self, kind):
        """A queue/exchange name unique to this run and scenario."""
        return f"{self.run_id}.{kind}.{uuid.uuid4().hex[:6]}"

    def _alarm(self, signum, frame):
        raise ScenarioTimeout(f"scenario exceeded {self.timeout:.0f}s")

    def run(self, selected, make_ctx):
        """Runs each scenario with a fresh context from `make_ctx()`; 0 if all passed."""
        signal.signal(signal.SIGALRM, self._alarm)
        failures = []
        for fn in selected:
            ctx = make_ctx()
            started = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
            try:
                fn(ctx)
                error = None
            except Exception as caught:  # a scenario fails, the runner goes on
                error = caught
                detail = traceback.format_exc()
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            signal.setitimer(signal.ITIMER_REAL, self.CLEANUP_TIMEOUT)
            try:
                ctx.cleanup()
            except ScenarioTimeout:
                pass
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.monotonic() - started
            if error is None:
                print(f"PASS {fn.__name__} ({elapsed:.2f}s)", flush=True)
            else:
                failures.append(fn.__name__)
                print(f"FAIL {fn.__name__} ({elapsed:.2f}s): {type(error).__name__}: {error}", flush=True)
                if os.environ.get("CONDUCTOR_INTEROP_VERBOSE"):
                    print(detail, flush=True)
        passed = len(selected) - len(failures)
        print(f"{self.label}: {passed} passed, {len(failures)} failed" + (": " + " ".join(failures) if failures else ""), flush=True)
        return 1 if failures else 0


class Resources:
    """Per-scenario connections, queues and exchanges; all closed or deleted afterwards."""

    def __init__(self, url):
        self.url = url
        self.connections = []
        self.queues = []
        self.exchanges = []

    def params(self, **overrides):
        params = pika.URLParameters(self.url)
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.blocked_connection_timeout = 10
        for key, value in overrides.items():
            setattr(params, key, value)
        return params

    def cleanup(self):
        try:
            if self.queues or self.exchanges:
                connection = pika.BlockingConnection(self.params())
                try:
                    for queue in self.queues:
                        self._quietly(connection, lambda channel: channel.queue_delete(queue))
                    for exchange in self.exchanges:
                        self._quietly(connection, lambda channel: channel.exchange_delete(exchange))
                finally:
                    connection.close()
        except Exception:
            pass
        for connection in self.connections:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:
                pass

    @staticmethod
    def _quietly(connection, action):
        """One channel per deletion: a failed one closes only its own channel."""
        channel = connection.channel()
        try:
            action(channel)
            channel.close()
        except Exception:
            pass
