# djbake: files made in login shells are not readable by other users.
# Login shells only (this is /etc/profile.d): services keep systemd's 022,
# and djbake-deploy sets its own umask, so a deploy run from such a shell
# still makes files the app can read.
umask 027
