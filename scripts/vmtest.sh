#!/usr/bin/env bash
# The privileged rung (shared/design/TESTING.md, rung 2): every package with
# test files behind the `vmtest` build tag is compiled (`go test -c`, static)
# and its TestVM* tests run as root in a QEMU guest on the Debian kernel
# (scripts/vmtest/run). Packages that need the same machine share one boot:
#
#   medium   OVMF + VGA std (efivarfs, efifb), a user-net NIC, two USB sticks
#            and a virtio ESP from scripts/vmtest/fixtures, one stick to
#            hot-plug:                       ./boot/... ./display/... ./netup/...
#   storage  SeaBIOS, dm_crypt + ext4, swtpm, two blank virtio disks, and
#            the host's cryptsetup and mke2fs with their libraries (the
#            reference tool and the mkfs the appliance bundles): ./storage/...
#
# The groups run at the same time (two cores, one VM each). A group whose
# packages have no vmtest-tagged tests is reported and does not fail the rung.
# Exit status: 0 every group passed, 1 otherwise. VMTEST_BUDGET bounds the
# whole rung in seconds (default 330: under 6 minutes with the build).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH" CGO_ENABLED=0

budget=${VMTEST_BUDGET:-330}
started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/inert-vmtest.XXXXXX")
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "vmtest: building the runner and the fixtures" >&2
go build -o "$work/run" ./scripts/vmtest/run
go run ./scripts/vmtest/fixtures -out "$work/fixtures"
fx=$work/fixtures
truncate -s 256M "$work/storage-a.img" "$work/storage-b.img"

# Each group gets what is left of the budget, less time to report.
left=$((budget - (SECONDS - started) - 15))
if [ "$left" -lt 60 ]; then
	echo "vmtest: only ${left}s left of the ${budget}s budget after the build" >&2
	exit 1
fi

declare -A group_args=(
	[medium]="-pkg ./boot/...,./display/...,./netup/... -ovmf -net
		-usb $fx/esp-usb.img,$fx/scratch-usb.img -disks $fx/esp-virtio.img
		-hotplug-usb $fx/esp-hotplug.img -share $fx/share
		-modules xhci_pci,usb_storage,uas,sd_mod,vfat,nls_cp437,nls_ascii,virtio_blk,efivarfs,virtio_net"
	[storage]="-pkg ./storage/... -disks $work/storage-a.img,$work/storage-b.img -tpm
		-bin /usr/sbin/cryptsetup,/usr/sbin/mke2fs
		-modules virtio_blk,dm_crypt,xts,ecb,ext4,crc32c_generic,algif_skcipher,algif_hash"
)
groups=(medium storage)

for g in "${groups[@]}"; do
	# shellcheck disable=SC2086 # the arguments are split on purpose
	timeout --kill-after=15 "$left" "$work/run" ${group_args[$g]} \
		-timeout "$((left - 5))s" -test-timeout "$((left - 20))s" >"$work/$g.log" 2>&1 &
	pids+=("$!")
	echo "vmtest: group $g started" >&2
done

failed=0
summary=()
for i in "${!groups[@]}"; do
	g=${groups[$i]}
	rc=0
	wait "${pids[$i]}" || rc=$?
	case $rc in
	0) verdict="ok" ;;
	3) verdict="no vmtest-tagged tests" ;;
	124 | 137) verdict="TIMED OUT after ${left}s"; failed=1 ;;
	*) verdict="FAIL (exit $rc)"; failed=1 ;;
	esac
	line=$(grep -E '^PASS [0-9]+ / FAIL [0-9]+$' "$work/$g.log" | tail -1 || true)
	summary+=("$(printf '%-8s %-28s %s' "$g" "$verdict" "$line")")
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		echo "---- vmtest group $g: failing tests and the end of its log" >&2
		grep -E -- '--- FAIL|^[a-z_]+: +[a-z_]+\.go:[0-9]+: |vmtest' "$work/$g.log" | tail -60 >&2 || true
		tail -15 "$work/$g.log" >&2
	fi
	# Per-binary verdicts the runner printed.
	grep -E '^[A-Za-z0-9_]+ +(ok|FAIL \(exit -?[0-9]+\))$' "$work/$g.log" | sed "s/^/  $g: /" >&2 || true
	# Benchmarks print BENCH lines (figures, never verdicts).
	grep -E '^[A-Za-z0-9_]+: BENCH ' "$work/$g.log" | sed "s/^/  $g: /" >&2 || true
done

echo "vmtest summary ($((SECONDS - started))s):"
printf '  %s\n' "${summary[@]}"
exit "$failed"
