"""Gunicorn settings for the web tier (`make serve`); docs/deploy.md explains each choice.

Read by path (`gunicorn -c console/gunicorn_config.py`), so importing it starts no Django.
Every value can be changed through the environment; the defaults suit one host behind a
reverse proxy on the same machine.
"""

import os


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# Behind the reverse proxy on the same host: loopback only. In a container, set
# GUNICORN_BIND=0.0.0.0:8000 and let the platform's proxy reach it.
bind = [os.environ.get("GUNICORN_BIND") or f"127.0.0.1:{_int('PORT', 8000)}"]

# Threads, not processes alone: most of a request's time is spent waiting on PostgreSQL,
# Redis or Braze, and a thread waiting costs far less memory than a process. Each thread
# holds its own database connection (CONN_MAX_AGE), so PostgreSQL sees workers x threads.
worker_class = "gthread"
workers = _int("WEB_CONCURRENCY", max(2, os.cpu_count() or 1))
threads = _int("GUNICORN_THREADS", 4)

# A worker that stops answering its arbiter for this long is killed and replaced. With
# threads, a request that hangs does not stop the heartbeat: the bound on one request is
# Braze's own timeouts (BRAZE_*_TIMEOUT, retries) and the proxy's read timeout.
timeout = _int("GUNICORN_TIMEOUT", 60)
# On TERM or HUP, requests in flight get this long to finish before their worker is killed.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Idle keep-alive connections from the proxy wait in the worker's poller, not in a thread.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Each worker is replaced after about this many requests (memory a library holds on to is
# given back); the jitter spreads the restarts so the workers never all restart together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# The heartbeat file lives in memory where there is a tmpfs: on a container's overlay disk
# a slow fsync can make healthy workers look dead.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# Gunicorn's control socket (an admin interface on a fixed path per user) is not used, and
# two servers for one user would fight over it.
control_socket_disable = True

# Errors to stderr. The access log is off unless asked for (GUNICORN_ACCESS_LOG=-): the
# reverse proxy keeps one already, and the console's own request logging is Django's.
errorlog = "-"
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "braze-console"
