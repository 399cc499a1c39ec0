#!/bin/sh
# Builds the native engine addon (binding.gyp → build/Release/linkerd_tcp_engine.node) with
# npm's bundled node-gyp during `npm ci`/`npm install`, from these sources and the machine's
# compiler and Node headers (npm's nodedir, else /usr/include/node): nothing is downloaded.
# Never fails the install: without a compiler, or off Linux, the proxy runs on the node
# engine and says so at startup.
cd "$(dirname "$0")/.." || exit 0
if [ "$(uname -s)" != Linux ]; then
  echo "linkerd-tcp: native engine not built (not Linux); the node engine will be used"
  exit 0
fi
nodedir=${npm_config_nodedir:-}
if [ -z "$nodedir" ] && [ -f /usr/include/node/node_api.h ]; then nodedir=/usr; fi
if [ -z "$nodedir" ] && [ -f /usr/local/include/node/node_api.h ]; then nodedir=/usr/local; fi # the node images
if [ -n "${npm_config_node_gyp:-}" ]; then set -- node "$npm_config_node_gyp"; else set -- node-gyp; fi
if "$@" rebuild ${nodedir:+"--nodedir=$nodedir"} >build-native.log 2>&1; then
  echo "linkerd-tcp: native engine built (build/Release/linkerd_tcp_engine.node)"
  rm -f build-native.log
else
  tail -n 20 build-native.log >&2
  echo "linkerd-tcp: native engine NOT built (see build-native.log); the node engine will be used" >&2
fi
exit 0
