# djbake: an idle interactive login shell ends after 15 minutes (CIS Level 1,
# Lynis SHLL-6220), and login shells make no core dumps (Lynis KRNL-5820;
# pam_limits' hard 0 already applies). Interactive shells only: scripts,
# services and `ssh host CMD` never read TMOUT's expiry.
case $- in
    *i*) TMOUT=900; readonly TMOUT; export TMOUT ;;
esac
# shellcheck disable=SC3045 # every login shell here (dash, bash) has ulimit -c
ulimit -c 0
