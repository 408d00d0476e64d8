# djbake: an idle interactive login shell ends after 10 minutes (ANSSI BP-028
# and CIS Level 1 ask at most 600 and 900 s; Lynis SHLL-6220), and login
# shells make no core dumps (Lynis KRNL-5820; pam_limits' hard 0 already
# applies). Interactive shells only: scripts, services and `ssh host CMD`
# never read TMOUT's expiry. bash gets `declare -xr`, the form OpenSCAP's
# accounts_tmout reads; other shells (dash has no declare) the POSIX form.
case $- in
    *i*)
        if [ -n "${BASH_VERSION:-}" ]; then
            # shellcheck disable=SC3044 # bash only, checked on the line above
            declare -xr TMOUT=600
        else
            TMOUT=600; readonly TMOUT; export TMOUT
        fi ;;
esac
# shellcheck disable=SC3045 # every login shell here (dash, bash) has ulimit -c
ulimit -c 0
