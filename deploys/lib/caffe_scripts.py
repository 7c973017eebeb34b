"""The shell steps of the Caffe build (``deploys/caffe.py``), run as ``sh -c SCRIPT NAME ARGS``.

Arguments are passed as positional parameters, never interpolated into the text, so paths and
URLs from host data cannot change what runs.
"""

# Tries the build cache for this build key. Arguments: python, cache tool, cache dir, cache
# URL, key, prefix, marker, log. A hit swaps the prefix in and writes the marker, which makes every
# later step of this build a no-op (_UNLESS_RESTORED); a miss (or no cache) leaves no marker.
RESTORE = r"""
set -u
py=$1 tool=$2 cache=$3 url=$4 key=$5 prefix=$6 marker=$7 log=$8
rm -f "$marker"
[ -n "$cache$url" ] && [ -f "$tool" ] || exit 0
mkdir -p "$(dirname "$log")" "$(dirname "$marker")"
short=$(printf %.12s "$key")
if "$py" "$tool" restore --cache "$cache" --url "$url" --name caffe --key "$key" \
    --prefix "$prefix" 2>> "$log"; then
  echo "$key" > "$marker"
  echo "== $(date -u +%FT%TZ) Caffe restored from the build cache (key $short), nothing compiled" \
    | tee -a "$log"
else
  echo "== $(date -u +%FT%TZ) no build cache artifact for Caffe key $short: building" \
    | tee -a "$log"
fi
"""

# Runs the rest of its arguments unless the marker (first argument) exists.
UNLESS_RESTORED = '[ -e "$0" ] || exec "$@"'

# Publishes the installed prefix (a failed publish never fails the build). Arguments: python,
# cache tool, cache dir, publish (1/0), key, prefix, inputs JSON.
PUBLISH = r"""
set -u
py=$1 tool=$2 cache=$3 publish=$4 key=$5 prefix=$6 inputs=$7
[ "$publish" = 1 ] && [ -n "$cache" ] && [ -f "$tool" ] || exit 0
echo "publishing Caffe to the build cache"
"$py" "$tool" publish --cache "$cache" --name caffe --key "$key" --prefix "$prefix" \
  --inputs "$inputs" || true
"""

# Applies the patch set idempotently. Arguments: source dir, patch files in order.
APPLY_PATCHES = r"""
set -eu
src=$1; shift
cd "$src"
for p in "$@"; do
  name=$(basename "$p")
  targets=$(sed -n 's|^+++ b/||p' "$p")
  absent=""; present=""
  for t in $targets; do
    if [ -e "$t" ]; then present="$present $t"; else absent="$absent $t"; fi
  done
  if [ -z "$present" ]; then
    echo "patch $name: skipped, its files are absent from this tree:$absent (SSD-only)"
    continue
  fi
  if [ -n "$absent" ]; then
    echo "patch $name does not fit this tree: present:$present, absent:$absent" >&2
    exit 1
  fi
  if git apply --check -R "$p" 2>/dev/null; then
    echo "patch $name: already applied"
  elif git apply --check "$p" 2>/dev/null; then
    git apply "$p"
    echo "patch $name: applied"
  else
    echo "patch $name no longer applies to $(git rev-parse HEAD):" >&2
    git apply --check "$p" >&2 || true
    exit 1
  fi
done
"""

# Fetches and checks out a ref into a clean tree. Arguments: repo URL, ref, source dir.
CHECKOUT = r"""
set -eu
repo=$1; ref=$2; src=$3
if [ ! -d "$src/.git" ]; then
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  git clone --quiet --no-checkout "$repo" "$src"
fi
cd "$src"
git remote set-url origin "$repo"
if ! git cat-file -e "$ref^{commit}" 2>/dev/null; then
  git fetch --quiet origin "+refs/heads/*:refs/remotes/origin/*" --tags
fi
git -c advice.detachedHead=false checkout --quiet --force --detach "$ref"
git clean -fdxq
"""

# make with the log in /var/log/dlrig; the log's tail on failure. Arguments: src, log, jobs,
# targets...
MAKE = r"""
set -eu
src=$1; log=$2; jobs=$3; shift 3
[ "$jobs" -gt 0 ] || jobs=$(nproc)
mkdir -p "$(dirname "$log")"
cd "$src"
echo "== $(date -u +%FT%TZ) make -j$jobs $*" >> "$log"
if ! nice make -j"$jobs" "$@" >> "$log" 2>&1; then
  echo "make $* failed; last lines of $log:" >&2
  tail -n 60 "$log" >&2
  exit 1
fi
echo "== $(date -u +%FT%TZ) done make $*" >> "$log"
"""


# A libcudnn.so link for cuDNN roots that ship only libcudnn.so.N (the pip wheels).
# Arguments: cuDNN root, links dir.
CUDNN_LINK = r"""
set -eu
mkdir -p "$2"
if [ ! -e "$1/lib/libcudnn.so" ]; then
  for f in "$1"/lib/libcudnn.so.[0-9]*; do
    [ -e "$f" ] || { echo "no libcudnn.so.N in $1/lib" >&2; exit 1; }
    ln -sfn "$f" "$2/libcudnn.so"
    break
  done
fi
"""


# Moves the distribute tree into the prefix; `caffe` next to `caffe.bin` (distribute
# installs the tools with their .bin names). Arguments: stage dir, prefix.
INSTALL_PREFIX = r"""
set -eu
[ -e "$1/bin/caffe" ] || ln -s caffe.bin "$1/bin/caffe"
rm -rf "$2.old"
[ ! -e "$2" ] || mv "$2" "$2.old"
mkdir -p "$(dirname "$2")"
mv "$1" "$2"
rm -rf "$2.old"
"""
