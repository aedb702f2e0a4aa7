#!/usr/bin/env bash
# Installs the Debian packages the project's builds and browser tests need, when missing.
#
# When everything is installed, apt is not touched at all. Otherwise it waits for any
# other apt/dpkg (unattended-upgrades, another install) to release its locks, at most
# APT_LOCK_TIMEOUT seconds (default 300), then installs; on time-out it says so and
# fails. WITH_BROWSER=1 adds Chromium, WITH_SERVICES=1 the Redis server CI runs, and
# HUODONG_EXTRA_SYSTEM_PACKAGES any further Debian packages (space separated).
# A CJK font (fonts-noto-cjk) is installed by default: the daily report's charts
# (matplotlib) and the browser tests' screenshots draw Chinese text with it (boxes
# without it). WITH_CJK_FONTS=0 skips it (the charts fall back to English labels).
set -euo pipefail
APT_LOCK_TIMEOUT="${APT_LOCK_TIMEOUT:-300}"
APT_LOCK_FILES="${APT_LOCK_FILES:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}"

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

need=()
command -v pkg-config >/dev/null 2>&1 || installed pkg-config || need+=(pkg-config)
pkg-config --exists mysqlclient 2>/dev/null || pkg-config --exists libmariadb 2>/dev/null \
  || installed default-libmysqlclient-dev || need+=(default-libmysqlclient-dev)
command -v msgfmt >/dev/null 2>&1 || installed gettext || need+=(gettext)  # compilemessages
if [ "${WITH_BROWSER:-0}" = "1" ]; then [ -x /usr/bin/chromium ] || installed chromium || need+=(chromium); fi
if [ "${WITH_CJK_FONTS:-1}" = "1" ]; then installed fonts-noto-cjk || need+=(fonts-noto-cjk); fi
if [ "${WITH_SERVICES:-0}" = "1" ]; then command -v redis-server >/dev/null 2>&1 || need+=(redis-server); fi
for pkg in ${HUODONG_EXTRA_SYSTEM_PACKAGES:-}; do installed "$pkg" || need+=("$pkg"); done
[ ${#need[@]} -eq 0 ] && exit 0

# apt and dpkg hold POSIX (fcntl) locks on these files while they run.
locks_free() {
  python3 - $APT_LOCK_FILES <<'PY'
import fcntl, os, sys
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        continue
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    except OSError:
        sys.exit(1)
    finally:
        os.close(fd)
PY
}
deadline=$((SECONDS + APT_LOCK_TIMEOUT))
until locks_free; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "ensure-system-deps: apt/dpkg is busy (its lock was held for ${APT_LOCK_TIMEOUT}s by another program);" \
      "needed: ${need[*]}. Try again when it has finished, or raise APT_LOCK_TIMEOUT." >&2
    exit 1
  fi
  [ -n "${waiting:-}" ] || { echo "ensure-system-deps: waiting for another apt/dpkg to finish (at most ${APT_LOCK_TIMEOUT}s)"; waiting=1; }
  sleep 1
done
wait_opt=(-o "DPkg::Lock::Timeout=$(( deadline > SECONDS ? deadline - SECONDS : 1 ))")
echo "installing system packages: ${need[*]}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get "${wait_opt[@]}" update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${wait_opt[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
