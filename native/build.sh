#!/bin/sh
# Builds the native engine addon (binding.gyp → build/Release/linkerd_tcp_engine.node) with
# npm's bundled node-gyp during `npm ci`/`npm install`, from these sources and the machine's
# compilers and Node headers (npm's nodedir, else /usr/include/node): nothing is downloaded.
# node-gyp compiles native/*.c with `cc` ($CC) and links the addon with `g++` ($CXX): both
# must be installed (Debian: gcc g++ make python3). A missing one is named before the build.
# Never fails the install unless LINKERD_TCP_REQUIRE_NATIVE=1 (the Docker image sets it):
# without a compiler, or off Linux, the proxy runs on the node engine and says so at startup.
# `npx linkerd-tcp` in a checkout installs the checkout into npx's cache as a link, which runs
# this script in the checkout again: an addon already built is kept (a rebuild deletes it
# first, and a proxy started meanwhile ran on the node engine).
cd "$(dirname "$0")/.." || exit 0
addon=build/Release/linkerd_tcp_engine.node

# What to do when the addon is not built: fall back (exit 0), or fail when it is required.
not_built() {
  if [ "${LINKERD_TCP_REQUIRE_NATIVE:-}" = 1 ]; then
    echo "linkerd-tcp: native engine NOT built: $1; LINKERD_TCP_REQUIRE_NATIVE=1, so the install fails" >&2
    exit 1
  fi
  echo "linkerd-tcp: native engine NOT built: $1; the node engine will be used" >&2
  exit 0
}

# (A copy npx installs from a registry or git has no build/: it is built.)
if [ "${npm_command:-}" = exec ] && [ -f "$addon" ]; then
  echo "linkerd-tcp: npx: keeping the native engine already built ($addon)"
  exit 0
fi
if [ "$(uname -s)" != Linux ]; then
  not_built "not Linux"
fi
missing=
for tool in make python3 "${CC:-cc}" "${CXX:-g++}"; do
  tool=${tool%% *} # "ccache gcc" → ccache
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  not_built "missing${missing} (node-gyp compiles with cc, links with g++, runs make and python3; on Debian: apt-get install gcc g++ make python3)"
fi
nodedir=${npm_config_nodedir:-}
if [ -z "$nodedir" ] && [ -f /usr/include/node/node_api.h ]; then nodedir=/usr; fi
if [ -z "$nodedir" ] && [ -f /usr/local/include/node/node_api.h ]; then nodedir=/usr/local; fi # the node images
if [ -n "${npm_config_node_gyp:-}" ]; then set -- node "$npm_config_node_gyp"; else set -- node-gyp; fi
if "$@" rebuild ${nodedir:+"--nodedir=$nodedir"} >build-native.log 2>&1 && [ -f "$addon" ]; then
  echo "linkerd-tcp: native engine built ($addon)"
  rm -f build-native.log
else
  tail -n 20 build-native.log >&2
  not_built "node-gyp failed (the lines above; all of it in build-native.log)"
fi
exit 0
