#!/bin/sh
# deps.sh installs the Debian packages inert's build and test rungs need.
# It is idempotent and fast when everything is present: dpkg-query decides,
# and apt-get (update + install) runs only for what is missing.
# It also makes sure Go is reachable (CI keeps it in /usr/local/go/bin).
set -eu

INERT_PACKAGES="qemu-system-x86 qemu-utils swtpm swtpm-tools ovmf linux-image-amd64
cryptsetup-bin dosfstools mtools gdisk sbsigntool systemd-boot-efi e2fsprogs
zbar-tools tpm2-tools zstd cpio wpasupplicant hostapd iproute2"

inert_missing=""
for pkg in $INERT_PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "installed" ]; then
		inert_missing="$inert_missing $pkg"
	fi
done

if [ -n "$inert_missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages:$inert_missing (run as root to install them)" >&2
		exit 1
	fi
	echo "deps.sh: installing:$inert_missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086 # the list is meant to split into words
	apt-get install -y -qq --no-install-recommends $inert_missing >/dev/null
	echo "deps.sh: installed:$inert_missing" >&2
else
	echo "deps.sh: all host packages present" >&2
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		PATH="/usr/local/go/bin:$PATH"
		export PATH
		echo "deps.sh: using Go from /usr/local/go/bin (add it to PATH)" >&2
	else
		echo "deps.sh: Go is not installed (expected on PATH or in /usr/local/go/bin)" >&2
		exit 1
	fi
fi
echo "deps.sh: $(go version)" >&2
