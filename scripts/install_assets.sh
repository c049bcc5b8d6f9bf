#!/usr/bin/env bash
# Install the offline assets of w2sg (models and datasets shipped inside PyPI packages).
#
#   scripts/install_assets.sh [base|full]      (default: base; full = base + the large assets)
#
# full also downloads the bigbench 1.0.0 sdist (358 MB, read as an archive, never installed) into
# $W2SG_CACHE_DIR/assets (default ~/.cache/w2sg/assets).
#
# Uses $VENV/bin/python -m pip (VENV defaults to .venv). Idempotent: pip skips what is already
# installed.
# Lines of requirements/assets-*.txt marked `# install: OPTIONS` are installed with those pip options
# (for example --no-deps), one pip call per distinct option set. torch is never installed here: the
# torch already in the venv is pinned with a constraint so no dependency can replace it.
set -euo pipefail

set_name="${1:-base}"
case "$set_name" in
  base) files=(requirements/assets-base.txt) ;;
  full) files=(requirements/assets-base.txt requirements/assets-full.txt) ;;
  *) echo "usage: $0 [base|full]" >&2; exit 2 ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
pip=("$venv/bin/python" -m pip)  # not bin/pip, whose shebang goes stale in a copied venv
python="$venv/bin/python"
if [[ ! -x "$python" ]]; then
  echo "install_assets: no python at $python; create the venv first (or set VENV)" >&2
  exit 2
fi

torch_version="$("$python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)"
if [[ -z "$torch_version" ]]; then
  echo "install_assets: torch is not installed in $venv; install torch==2.13.0 first" >&2
  exit 2
fi
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "torch==${torch_version}" >"$constraints"

# Group requirement lines by their `# install:` options (key "-" = ordinary install with deps).
declare -A groups=()
for file in "${files[@]}"; do
  while IFS= read -r line || [[ -n "$line" ]]; do
    req="${line%%#*}"
    req="$(echo "$req" | xargs)"
    [[ -z "$req" ]] && continue
    opts=""
    if [[ "$line" == *"# install:"* ]]; then
      opts="$(echo "${line#*# install:}" | xargs)"
    fi
    groups["with:$opts"]+="$req "
  done <"$root/$file"
done

start=$SECONDS
for key in "${!groups[@]}"; do
  opts="${key#with:}"
  echo "+ pip install $opts ${groups[$key]}"
  # shellcheck disable=SC2086
  "${pip[@]}" install --quiet -c "$constraints" $opts ${groups[$key]}
done

# BIG-bench tasks are read from the bigbench sdist archive, which is downloaded, never installed.
if [[ "$set_name" == full ]]; then
  cache="${W2SG_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/w2sg}"
  if [[ ! -f "$cache/assets/bigbench-1.0.0.tar.gz" ]]; then
    echo "+ pip download --no-deps --no-binary :all: bigbench==1.0.0 -> $cache/assets"
    mkdir -p "$cache/assets"
    "${pip[@]}" download --quiet --no-deps --no-binary :all: --no-build-isolation \
      -d "$cache/assets" bigbench==1.0.0
  fi
fi

after="$("$python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
if [[ "$after" != "$torch_version" ]]; then
  echo "install_assets: torch changed from $torch_version to $after; reinstall torch==$torch_version" >&2
  exit 1
fi
echo "install_assets: $set_name set installed in $((SECONDS - start)) s (torch $after unchanged)"
