#!/usr/bin/env bash
# Installs @tensorflow/tfjs-node (the native TensorFlow backend) with no access to Google's
# download hosts: libtensorflow and the prebuilt binding come from a local folder (a mirror).
#
#   scripts/tfjs-node-offline.sh --mirror DIR [--from-wheel tensorflow_cpu-2.9.1-...whl]
#
# DIR holds what tfjs-node 4.22's installer would download (see docs/native-tensorflow.md):
#   DIR/libtensorflow-cpu-linux-x86_64-2.9.1.tar.gz      libtensorflow 2.9.1 (include/, lib/)
#   DIR/napi-v8/4.22.0/CPU-linux-4.22.0.tar.gz           the prebuilt tfjs_binding.node (optional)
# Without the prebuilt binding it is compiled here (node-gyp, a C++ compiler, make, python3 and
# the Node headers: /usr/include/node from the nodejs package, or --nodedir).
#
# --from-wheel first makes DIR's libtensorflow tarball from the tensorflow-cpu 2.9.1 wheel of PyPI:
# its C API headers, libtensorflow_framework.so.2, and _pywrap_tensorflow_internal.so (which exports
# the C API) as libtensorflow.so.2.9.1, plus libpython-stub.so: stand-ins for the CPython symbols
# that library references. Node must then run with
#   LD_PRELOAD=<repo>/node_modules/@tensorflow/tfjs-node/deps/lib/libpython-stub.so
# (the script prints it). Needs unzip, nm and gcc.
#
# The installer's settings used (tfjs-node 4.22, scripts/install.js and @mapbox/node-pre-gyp):
#   TFJS_NODE_BASE_URI   prefix of the libtensorflow URL (+ "cpu-linux-x86_64-2.9.1.tar.gz");
#                        http(s) only, so DIR is served on 127.0.0.1 while npm runs
#   TFJS_NODE_CDN_STORAGE  alternative: a host whose tensorflow/libtensorflow/ holds the tarball
#   npm_config_tfjs_binding_binary_host_mirror  where the prebuilt binding is looked up
#                        (<mirror>napi-v8/4.22.0/CPU-linux-4.22.0.tar.gz); file:// works
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
LIBTF_VERSION=2.9.1
usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

mirror=''
wheel=''
nodedir=''
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mirror) mirror="${2:?--mirror needs a folder}"; shift 2 ;;
    --from-wheel) wheel="${2:?--from-wheel needs a .whl file}"; shift 2 ;;
    --nodedir) nodedir="${2:?--nodedir needs a folder}"; shift 2 ;;
    -h | --help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n "$mirror" ]] || usage
mkdir -p "$mirror"
mirror="$(cd "$mirror" && pwd)"
repo="$(cd "$(dirname "$0")/.." && pwd)"
libtf="$mirror/libtensorflow-cpu-linux-x86_64-$LIBTF_VERSION.tar.gz"

if [[ -n "$wheel" ]]; then
  echo "* making $libtf from $wheel"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  unzip -q "$wheel" 'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/platform/*' \
    'tensorflow/libtensorflow_framework.so.2' 'tensorflow/python/_pywrap_tensorflow_internal.so' -d "$work/whl"
  mkdir -p "$work/tar/include" "$work/tar/lib"
  cp -r "$work/whl/tensorflow/include/tensorflow" "$work/tar/include/"
  lib="$work/tar/lib"
  cp "$work/whl/tensorflow/libtensorflow_framework.so.2" "$lib/"
  # The binding's DT_NEEDED is the library's soname, _pywrap_tensorflow_internal.so: keep that file.
  cp "$work/whl/tensorflow/python/_pywrap_tensorflow_internal.so" "$lib/"
  ln -s _pywrap_tensorflow_internal.so "$lib/libtensorflow.so.$LIBTF_VERSION"
  ln -s _pywrap_tensorflow_internal.so "$lib/libtensorflow.so.2"
  ln -s _pywrap_tensorflow_internal.so "$lib/libtensorflow.so"
  ln -s libtensorflow_framework.so.2 "$lib/libtensorflow_framework.so.$LIBTF_VERSION"
  ln -s libtensorflow_framework.so.2 "$lib/libtensorflow_framework.so"
  # Data relocations against CPython symbols are bound at load time: define them (never used).
  {
    echo '/* Stand-ins for the CPython symbols of _pywrap_tensorflow_internal.so; never called from Node. */'
    nm -D --undefined-only "$lib/_pywrap_tensorflow_internal.so" | awk '{print $2}' | sed 's/@.*//' |
      grep -E '^_?Py' | sort -u | sed 's/.*/char &[64];/'
  } >"$work/pystub.c"
  gcc -shared -fPIC -o "$lib/libpython-stub.so" "$work/pystub.c"
  tar -czf "$libtf" -C "$work/tar" include lib
fi
[[ -f "$libtf" ]] || { echo "missing $libtf (or give --from-wheel)" >&2; exit 1; }

# libtensorflow is fetched with http(s) only: serve the mirror on loopback while npm runs.
port_file="$(mktemp)"
node -e '
  const http = require("http"), fs = require("fs"), path = require("path");
  const root = process.argv[1];
  const server = http.createServer((req, res) => {
    const file = path.join(root, path.normalize(decodeURIComponent(req.url.split("?")[0])));
    if (!file.startsWith(root) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end(); return;
    }
    res.writeHead(200, { "content-length": fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  server.listen(0, "127.0.0.1", () => fs.writeFileSync(process.argv[2], String(server.address().port)));
' "$mirror" "$port_file" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; rm -f "$port_file"; [[ -z "${work:-}" ]] || rm -rf "$work"' EXIT
for _ in $(seq 50); do [[ -s "$port_file" ]] && break; sleep 0.1; done
port="$(cat "$port_file")"

export TFJS_NODE_BASE_URI="http://127.0.0.1:$port/libtensorflow-"
export npm_config_tfjs_binding_binary_host_mirror="file://$mirror/"
if [[ -z "$nodedir" && -f /usr/include/node/node_api.h ]]; then nodedir=/usr; fi
# node-gyp's fallback build would otherwise download the Node headers.
[[ -z "$nodedir" ]] || export npm_config_nodedir="$nodedir"
echo "* TFJS_NODE_BASE_URI=$TFJS_NODE_BASE_URI"
echo "* npm_config_tfjs_binding_binary_host_mirror=$npm_config_tfjs_binding_binary_host_mirror"
echo "* npm_config_nodedir=${npm_config_nodedir:-<node-gyp default>}"

cd "$repo"
# --no-save: package.json and the lockfile already list it (an optional dependency). Its install
# script runs in the rebuild, also when the package is already there (npm ci keeps a failed
# optional dependency's files out, a previous run may have left them).
npm install --no-save --ignore-scripts --no-audit --no-fund "@tensorflow/tfjs-node@$TFJS_NODE_VERSION"
npm rebuild --foreground-scripts @tensorflow/tfjs-node

preload=''
stub="$repo/node_modules/@tensorflow/tfjs-node/deps/lib/libpython-stub.so"
[[ -f "$stub" ]] && preload="$stub"
echo "* checking that TensorFlow loads"
LD_PRELOAD="$preload" node -e '
  const tf = require("@tensorflow/tfjs-node");
  const a = tf.ones([64, 64]);
  const s = tf.matMul(a, a).sum().dataSync()[0];
  if (s !== 64 * 64 * 64) throw new Error("matMul gave " + s);
  console.log("native TensorFlow backend ready: " + tf.getBackend());
'
if [[ -n "$preload" ]]; then
  echo "* run acft with: LD_PRELOAD=$preload ACFT_BACKEND=tensorflow ..."
fi
