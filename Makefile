# inert: build, image and test. `make qemu` and `make test` are the two
# commands a fresh Debian machine (as root) needs; both install what they use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export PATH := /usr/local/go/bin:$(PATH)
export CGO_ENABLED := 0
GOFLAGS_IMAGE := -trimpath -buildvcs=false -ldflags=-s\ -w

PROFILE ?= demo
BUILD := build
BIN := $(BUILD)/bin
INERT := $(BIN)/inert
KEYS ?= secureboot
# no_timer_check: under emulation on a loaded host the kernel's IO-APIC timer
# probe can time out and panic; every modern machine passes it anyway.
CMDLINE_prod := console=ttyS0,115200 quiet loglevel=1 panic=0 no_timer_check
CMDLINE_debug := console=ttyS0,115200 loglevel=7 panic=0 no_timer_check
MODE ?= prod
CMDLINE ?= $(CMDLINE_$(MODE)) $(NS).mode=$(MODE)$(if $(filter 1,$(WIFI_ENABLED)), $(NS).wifi=enabled)
NS_demo := inert
NS_hyperbeam := lapee
NS ?= $(NS_$(PROFILE))
INITRAMFS := $(BUILD)/initramfs-$(PROFILE).cpio.zst
UKI := $(BUILD)/inert-$(PROFILE).efi
IMAGE ?= $(BUILD)/images/inert-$(PROFILE).img

.PHONY: help deps build initramfs uki image signing-keys qemu test unit fuzz vmtest e2e \
	operator-config-apply wifi-creds write-image bench clean lint

help:
	@echo "make qemu    build the demo image and boot it in QEMU (QEMU_EXIT=1, SECURE_BOOT=1,"
	@echo "             EXTRA_DISKS=a.img,b.img, SCREENSHOT=out.png, SERIAL_LOG=path, PROFILE=, IMAGE=)"
	@echo "make test    every rung of tests: unit, fuzz, privileged-in-VM, end to end"
	@echo "make build | initramfs | image | signing-keys | operator-config-apply | wifi-creds | write-image | bench"

deps:
	@scripts/deps.sh

build:
	@mkdir -p $(BIN)
	go build $(GOFLAGS_IMAGE) -o $(BIN)/init ./init
	go build $(GOFLAGS_IMAGE) -o $(BIN)/inert-demo ./cmd/inert-demo
	go build -o $(INERT) ./cmd/inert

initramfs: build
	$(INERT) initramfs --profile $(PROFILE) --init $(BIN)/init --out $(INITRAMFS)

signing-keys: build
	@if [ -f $(KEYS)/db.key ]; then echo "signing keys exist in $(KEYS)/"; \
	else $(INERT) keys --dir $(KEYS); fi

uki: initramfs signing-keys
	$(INERT) uki --initramfs $(INITRAMFS) --cmdline "$(CMDLINE)" --sign-dir $(KEYS) --out $(UKI)

image: uki
	@mkdir -p $(dir $(IMAGE))
	$(INERT) image --uki $(UKI) --out $(IMAGE)

QEMU_FLAGS = --image $(IMAGE) --keys $(KEYS) \
	$(if $(filter 1,$(SECURE_BOOT)),--secure-boot) \
	$(if $(EXTRA_DISKS),--extra-disks $(EXTRA_DISKS)) \
	$(if $(SCREENSHOT),--screenshot $(SCREENSHOT)) \
	$(if $(SERIAL_LOG),--serial-log $(SERIAL_LOG)) \
	$(if $(filter 1,$(QEMU_EXIT)),--exit-after-ready)

# IMAGE= boots an existing image; otherwise the profile's image is built first.
qemu: deps
	@if [ "$(IMAGE)" = "$(BUILD)/images/inert-$(PROFILE).img" ]; then $(MAKE) --no-print-directory image; \
	else $(MAKE) --no-print-directory build; fi
	$(INERT) qemu $(QEMU_FLAGS)

operator-config-apply: build
	@test -n "$(IMAGE)" || { echo "usage: make operator-config-apply IMAGE=... [CONFIG=config.json] [WIFI=wifi.conf]"; exit 2; }
	$(INERT) esp set --image $(IMAGE) $(if $(CONFIG),--config $(CONFIG)) $(if $(WIFI),--wifi $(WIFI))

wifi-creds: build
	$(INERT) wifi-creds --out $(or $(WIFI),wifi.conf)

write-image: build
	@test -n "$(DEV)" || { echo "usage: make write-image DEV=/dev/sdX IMAGE=..."; exit 2; }
	$(INERT) write-image --dev $(DEV) --image $(IMAGE)

# ---- tests ------------------------------------------------------------------
FUZZTIME ?= 3s

test: deps lint unit fuzz vmtest e2e

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...

unit:
	go test -short -count=1 ./...

# Every fuzz target runs briefly; the corpus under testdata/fuzz is replayed by `unit`.
fuzz:
	@scripts/fuzz.sh $(FUZZTIME)

vmtest:
	scripts/vmtest.sh

# The whole log goes to build/e2e.log; the console gets verdicts, failures
# and the BENCH figures.
e2e:
	@mkdir -p $(BUILD)
	go test -count=1 -timeout 40m -v ./e2e/ 2>&1 | tee $(BUILD)/e2e.log | grep --line-buffered -E '^(--- |PASS|FAIL|ok|BENCH|e2e:|\s+[a-z_]+\.go:[0-9]+:)'

bench:
	go test -run '^$$' -bench . -benchtime 3x ./display/ ./initramfs/ ./boot/measure/ ./storage/...

clean:
	rm -rf $(BUILD)
