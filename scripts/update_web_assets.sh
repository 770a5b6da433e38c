#!/usr/bin/env bash
# Refresh the ONNX Runtime Web files the in-browser page serves (stream/web/vendor/onnxruntime-web/) from the npm
# package of one pinned version:
#   scripts/update_web_assets.sh           the version in stream/web/vendor/onnxruntime-web/VERSION
#   scripts/update_web_assets.sh 1.24.0    another version (then run tests/test_web.py and commit the folder)
# Only the single-threaded-capable WASM SIMD build is kept: the wasm-only ES module, its Emscripten loader and the
# .wasm, stored gzip-compressed (the server sends it compressed; see stream/web_server.py). Needs npm and network.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=stream/web/vendor/onnxruntime-web
version=${1:-$(cat "$dest/VERSION")}
files=(ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "onnxruntime-web@$version" >/dev/null && tar xzf onnxruntime-web-*.tgz)
license=$(sed -n 's/.*"license": *"\([^"]*\)".*/\1/p' "$tmp/package/package.json")
[ "$license" = MIT ] || { echo "update_web_assets: onnxruntime-web $version is licensed '$license', not MIT" >&2; exit 1; }
mkdir -p "$dest"
rm -f "$dest"/*.mjs "$dest"/*.wasm "$dest"/*.wasm.gz
cp "$tmp/package/dist/${files[0]}" "$tmp/package/dist/${files[1]}" "$dest/"
gzip -9 -n -c "$tmp/package/dist/${files[2]}" >"$dest/${files[2]}.gz"
echo "$version" >"$dest/VERSION"
{
  echo "# onnxruntime-web $version from the npm registry (MIT, Copyright (c) Microsoft Corporation)"
  echo "# sha256 of each file as the npm package ships it (the .wasm is stored here gzip-compressed as .wasm.gz)"
  (cd "$tmp/package/dist" && sha256sum "${files[@]}")
  echo "# npm tarball integrity: $(npm view "onnxruntime-web@$version" dist.integrity)"
} >"$dest/SHA256SUMS"
cat >"$dest/LICENSE" <<'MIT'
onnxruntime-web (https://www.npmjs.com/package/onnxruntime-web), the files in this folder: MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
MIT
du -b "$dest"/* | sort -k2
