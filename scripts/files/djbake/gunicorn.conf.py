# djbake: gunicorn settings for the Django app (the app module is given on
# the command line from DJBAKE_WSGI_APP in /etc/djbake/app.env).
import multiprocessing

workers = multiprocessing.cpu_count() * 2 + 1
timeout = 30
graceful_timeout = 25
# Behind nginx on a unix socket: trust its X-Forwarded-* headers.
forwarded_allow_ips = "*"
accesslog = "/var/log/django/gunicorn-access.log"
errorlog = "/var/log/django/gunicorn-error.log"
capture_output = True
