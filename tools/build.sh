# Build and install the extension (and the client library, when there is
# one).  Source this file.  CI builds with -Werror.

build_and_install() {
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    local werror=""
    [ -n "${CI:-}" ] && werror="-Werror"
    make -s SYRPC_WERROR="$werror" >/dev/null || { echo "build failed"; return 1; }
    $SUDO make -s install >/dev/null || { echo "install failed"; return 1; }
    if [ -f client/Makefile ]; then
        make -s -C client WERROR="$werror" >/dev/null || { echo "client build failed"; return 1; }
        $SUDO make -s -C client install >/dev/null || { echo "client install failed"; return 1; }
    fi
}
