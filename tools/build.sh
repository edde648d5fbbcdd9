# Build and install the extension (and the client library, when there is
# one).  Source this file.  CI builds with -Werror.
# SYRPC_KEEP_EXTENSION=1: leave the installed extension alone and test the
# client against it (a worktree whose extension/ is someone else's work in
# progress must not replace the one they are testing).

build_and_install() {
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    local werror=""
    [ -n "${CI:-}" ] && werror="-Werror"
    if [ -z "${SYRPC_KEEP_EXTENSION:-}" ]; then
        make -s SYRPC_WERROR="$werror" >/dev/null || { echo "build failed"; return 1; }
        $SUDO make -s install >/dev/null || { echo "install failed"; return 1; }
    fi
    if [ -f client/Makefile ]; then
        make -s -C client WERROR="$werror" >/dev/null || { echo "client build failed"; return 1; }
        $SUDO make -s -C client install >/dev/null || { echo "client install failed"; return 1; }
    fi
}
