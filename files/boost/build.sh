# Build Boost from a pinned source archive; run by deploys/boost.py as
#   nice -n 10 bash -c "$(cat build.sh)" boost-build VERSION URL SHA256 LIBS PREFIX CXX PYTHON JOBS B2_OPTIONS
#                                        SPEC_JSON BUILDKEY_PROGRAM LOG CACHE_DIR CACHE_URL PUBLISH
# Every step's output goes to LOG; stage lines go to stdout too. On failure the last lines of
# LOG are printed to stderr. The build key is written last (deploys/lib/buildkey.py).
set -Eeuo pipefail
version=$1 url=$2 sha256=$3 libs=$4 prefix=$5 cxx=$6 python=$7 jobs=$8 b2_options=$9
spec=${10} buildkey_program=${11} log=${12}
cache_dir=${13:-} cache_url=${14:-} cache_publish=${15:-0}
cache_tool=/opt/dlrig/bin/dlrig_cache.py

under=boost_${version//./_}
cache=/var/cache/dlrig/boost
work=/var/tmp/dlrig-boost-build
archive=$cache/${url##*/}
key_file=$prefix/.dlrig-build-key.json
staging=$prefix.dlrig-staging
old=$prefix.dlrig-old

mkdir -p "$(dirname "$log")"
: >"$log"
exec 3>&1 4>&2 >>"$log" 2>&1

stage() { echo "==> $*"; echo "boost: $*" >&3; }

fail_with_log() {
  rc=$?
  trap - ERR
  {
    echo "Boost build failed (exit $rc); last lines of $log:"
    tail -n 40 "$log"
  } >&4
  exit "$rc"
}
trap fail_with_log ERR

buildkey() { "$py" -c "$buildkey_program" "$1" "$spec" "$key_file"; }

cxx_path=$(command -v "$cxx") || { echo "compiler $cxx not found (the plan's compiler: toolchain_gcc)"; false; }
py=$(command -v "$python") || { echo "Python $python not found (the plan's interpreter: preflight_python, pip_stack_venv)"; false; }

# 1. Same key already recorded (the compiler may have been installed after planning): done.
if buildkey check; then
  stage "Boost $version already built with these inputs; nothing to do"
  exit 0
fi

# 1b. The build cache (deploys/build_cache.py): an artifact of this very key is restored,
#     checksum-verified and swapped in whole, instead of downloading and compiling.
key=$("$py" -c "$buildkey_program" state "$spec" "$key_file" |
  "$py" -c 'import json, sys; e = json.load(sys.stdin)["expected"]; print(e["build_key"])')
inputs=$("$py" -c "$buildkey_program" state "$spec" "$key_file" |
  "$py" -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["expected"]["inputs"]))')
if [ -n "$cache_dir$cache_url" ] && [ -f "$cache_tool" ]; then
  if "$py" "$cache_tool" restore --cache "$cache_dir" --url "$cache_url" --name boost \
    --key "$key" --prefix "$prefix"; then
    ldconfig
    buildkey write
    stage "Boost $version restored from the build cache (key ${key:0:12}), nothing compiled"
    exit 0
  fi
  stage "no build cache artifact for key ${key:0:12}: building"
fi

# 2. Download, verified before anything is extracted. A cached archive is re-verified.
mkdir -p "$cache"
if [ -f "$archive" ] && ! echo "$sha256  $archive" | sha256sum -c --status; then
  rm -f "$archive"
fi
if [ ! -f "$archive" ]; then
  stage "downloading $url"
  rm -f "$archive.part"
  curl -fL --retry 3 --silent --show-error -o "$archive.part" "$url"
  got=$(sha256sum "$archive.part" | cut -d' ' -f1)
  if [ "$got" != "$sha256" ]; then
    rm -f "$archive.part"
    echo "sha256 mismatch for $url: expected $sha256 (boost_sha256), got $got; file removed"
    false
  fi
  mv "$archive.part" "$archive"
fi

# 3. Extract, unless this archive's tree was completely extracted before (a stamp written
#    after tar finished; a killed extraction has none and is redone from scratch).
src=$work/$under
if [ "$(cat "$work/.extracted" 2>/dev/null)" != "$sha256" ]; then
  stage "extracting $archive"
  rm -rf "$work"
  mkdir -p "$work"
  tar -C "$work" -xf "$archive"
  [ -f "$src/bootstrap.sh" ] || { echo "$archive has no $under/bootstrap.sh"; false; }
  echo "$sha256" >"$work/.extracted"
else
  stage "reusing the extracted tree in $work"
fi

# 4. Compiler and Python for b2: user-config.jam is read before project-config.jam, whose
#    'using' lines bootstrap.sh guards, so these win.
case "$("$cxx_path" --version | head -n1)" in
  *clang*) toolset=clang ;;
  *) toolset=gcc ;;
esac
pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# A venv's interpreter has no headers of its own: b2 would look under the venv's prefix. The
# interpreter's sysconfig names its base's include and library dirs.
pyinc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
pylib=$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
cat >"$work/user-config.jam" <<EOF
using $toolset : : $cxx_path ;
using python : $pyver : $py : $pyinc : $pylib ;
EOF
cat "$work/user-config.jam"

cd "$src"
boot_stamp="$toolset $cxx_path $("$cxx_path" --version | head -n1) $py $pyver $libs"
if [ "$(cat "$work/.bootstrapped" 2>/dev/null)" != "$boot_stamp" ]; then
  stage "bootstrapping b2 ($toolset, libraries $libs)"
  rm -f "$work/.bootstrapped"
  CXX=$cxx_path ./bootstrap.sh --with-toolset="$toolset" --with-libraries="$libs" \
    --with-python="$py" --with-python-version="$pyver"
  echo "$boot_stamp" >"$work/.bootstrapped"
fi

# 5. Build into a staging prefix beside the real one (same file system: the swap is a rename).
[ "$jobs" -gt 0 ] 2>/dev/null || jobs=$(nproc)
stage "building with b2 -j$jobs (log: $log)"
# Objects of an interrupted build are never trusted (SIGKILL leaves truncated files).
rm -rf "$staging" "$work/build"
# shellcheck disable=SC2086  # b2_options are fixed words from the deploy
./b2 -q -j"$jobs" --user-config="$work/user-config.jam" --build-dir="$work/build" \
  --prefix="$staging" --layout=system $b2_options toolset="$toolset" install

# 6. Install: swap the staged tree in, then let the linker see it.
stage "installing into $prefix"
rm -rf "$old"
if [ -e "$prefix" ]; then mv "$prefix" "$old"; fi
mv "$staging" "$prefix"
rm -rf "$old" "$work"
ldconfig

# 6b. Publish the installed prefix for other hosts (a failed publish never fails the build).
if [ "$cache_publish" = 1 ] && [ -n "$cache_dir" ] && [ -f "$cache_tool" ]; then
  stage "publishing to the build cache"
  "$py" "$cache_tool" publish --cache "$cache_dir" --name boost --key "$key" \
    --prefix "$prefix" --inputs "$inputs" || true
fi

# 7. Last: the build key (a build killed before this line is rebuilt on the next run).
buildkey write
stage "Boost $version installed into $prefix"
