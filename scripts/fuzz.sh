#!/bin/bash
# fuzz.sh runs every Fuzz target in the repository for a short time each.
# The seed corpora also run on every `go test`; this gives each target a
# brief coverage-guided search on top.
set -euo pipefail
fuzztime=${1:-3s}
cd "$(dirname "$0")/.."
status=0
while IFS= read -r line; do
	file=${line%%:*}
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name ($fuzztime)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/inert-fuzz.log 2>&1; then
		cat /tmp/inert-fuzz.log
		status=1
	fi
done < <(grep -rE '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' --include='*_test.go' . | sort)
exit $status
