# djbake: gunicorn settings for the Django app (the app module is given on
# the command line from DJBAKE_WSGI_APP in /etc/djbake/app.env).
import multiprocessing
import sys

workers = multiprocessing.cpu_count() * 2 + 1
# The master imports the project once and forks the workers from it, instead
# of every worker importing Django and the project at once on the VM's few
# CPUs before the first request can be answered (boot to HTTP 200:
# docs/benchmarks.md); the workers share those pages copy-on-write. Code is
# loaded once per start, so new code takes a restart, which is what
# djbake-deploy does (gunicorn.socket holds requests meanwhile); a HUP only
# forks new workers from the code already loaded.
preload_app = True
timeout = 30
graceful_timeout = 25
# Behind nginx on a unix socket: trust its X-Forwarded-* headers.
forwarded_allow_ips = "*"
accesslog = "/var/log/django/gunicorn-access.log"
errorlog = "/var/log/django/gunicorn-error.log"
capture_output = True


def pre_fork(server, worker):
    # A database connection the project opened while loading (a query in an
    # AppConfig.ready(), say) must not be shared by the workers' processes:
    # the master closes it, and each worker opens its own when it needs one.
    db = sys.modules.get("django.db")
    if db is not None:
        db.connections.close_all()
