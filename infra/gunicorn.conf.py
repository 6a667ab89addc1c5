"""gunicorn's settings for the dashboard's web process (`make serve`), read from the environment.

    gunicorn -c infra/gunicorn.conf.py

One master process forks GREENLIGHT_WEB_WORKERS worker processes; each answers requests in a pool
of GREENLIGHT_WEB_THREADS threads (gthread). Django keeps one database connection per thread and,
in the production profile, keeps it for GREENLIGHT_DB_CONN_MAX_AGE seconds (60), health-checked
before reuse: so one web process holds at most `threads` connections and the server at most
`workers x threads`, however many browsers are connected. Idle keep-alive connections from
browsers wait in the worker's poller, not in a thread, so they hold no database connection.
docs/deploy.md sizes PostgreSQL for it.

| variable | default | meaning |
| --- | --- | --- |
| GREENLIGHT_WEB_BIND | 127.0.0.1:8000 | address(es) to listen on, comma-separated (host:port or unix:PATH) |
| GREENLIGHT_WEB_WORKERS | 2 | worker processes (about one per CPU core given to the web) |
| GREENLIGHT_WEB_THREADS | 4 | threads per worker: requests answered at once by one worker |
| GREENLIGHT_WEB_MAX_REQUESTS | 1000 | a worker is replaced after this many requests (0: never) ... |
| GREENLIGHT_WEB_MAX_REQUESTS_JITTER | 100 | ... plus up to this many, so workers are not replaced together |
| GREENLIGHT_WEB_TIMEOUT | 60 | seconds a worker may stay silent (one long request) before it is replaced |
| GREENLIGHT_WEB_GRACEFUL_TIMEOUT | 30 | seconds a stopping worker gets to finish the requests it has |
| GREENLIGHT_WEB_KEEPALIVE | 5 | seconds an idle keep-alive connection stays open (above the proxy's idle timeout) |
| GREENLIGHT_WEB_LOG_LEVEL | info | gunicorn's error log level (the access log is always written) |
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# gunicorn loads this file by path: the project root is not necessarily on the import path yet.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.env import env_int

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "infra.settings")
wsgi_app = "infra.wsgi:application"
bind = [b.strip() for b in os.environ.get("GREENLIGHT_WEB_BIND", "127.0.0.1:8000").split(",") if b.strip()]
worker_class = "gthread"
workers = env_int("GREENLIGHT_WEB_WORKERS", 2, minimum=1)
threads = env_int("GREENLIGHT_WEB_THREADS", 4, minimum=1)
max_requests = env_int("GREENLIGHT_WEB_MAX_REQUESTS", 1000, minimum=0)
max_requests_jitter = env_int("GREENLIGHT_WEB_MAX_REQUESTS_JITTER", 100, minimum=0)
timeout = env_int("GREENLIGHT_WEB_TIMEOUT", 60, minimum=1)
graceful_timeout = env_int("GREENLIGHT_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
keepalive = env_int("GREENLIGHT_WEB_KEEPALIVE", 5, minimum=0)
# Each worker imports Django itself after the fork: nothing opened in the master (a database
# connection above all) is ever shared by two processes.
preload_app = False
# Access log and errors on stdout/stderr, for the service manager's journal.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GREENLIGHT_WEB_LOG_LEVEL", "info")
# gunicorn's runtime control socket (gunicornc) is not used: without this, two servers of the
# same user on one machine would share its default path.
control_socket_disable = True
proc_name = "greenlight-web"
