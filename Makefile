# tcpcryptd build and test entry points. `make test` is the one command that runs the
# whole suite (as root it includes the network-namespace tests); CI calls it via .ci/run.

GO        ?= go
PKGS      := ./...
FUZZTIME  ?= 60s
BENCHTIME ?= 1s

.PHONY: all build test unit lint fuzz e2e bench netns-bench demo vectors clean image

all: build

build:
	$(GO) build $(PKGS)

# The whole suite: formatting, vet (also of the portable checksum loops, build tag nosimd), staticcheck, the conformance table's citations (and, where
# the protocol digest is at ../shared, that the table is current), then every test with the
# race detector.
# Root-only tests (namespaces, nftables) skip themselves with a message when not root;
# with TCPCRYPT_REQUIRE_ROOT_TESTS=1 (set by .ci/run) those skips are failures.
test: lint unit

# deploy/ is a module of its own (Kubernetes types stay out of the daemon's
# module); its tests build the image context with the packaging scripts.
unit:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	cd deploy && $(GO) test -race -count=1 -timeout 10m ./...

lint:
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags nosimd ./packet/
	$(GO) tool staticcheck $(PKGS)
	cd deploy && $(GO) vet ./... && $(GO) tool -modfile=../go.mod staticcheck ./...
	python3 scripts/conformance.py --check $(wildcard ../shared/spec/tcpcrypt-rfc-digest.md)

# Runs every fuzz target for FUZZTIME each, one after another.
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Root-only tests against the real kernel (network namespaces, nftables, NFQUEUE,
# the real binaries). `make test` runs them too when run as root.
e2e:
	$(GO) test -count=1 -run 'Integration|E2E|Kernel' ./...

# The newcomer's demo: two namespaces, tcpcryptd in each, a file moved between
# them, both ends' session ids and a capture excerpt. Needs root.
demo:
	./scripts/demo.sh

# Microbenchmarks (no root), with ratios against the bare AEAD in the same run.
bench:
	./scripts/bench.sh $(BENCHTIME)

# Namespace benchmark (root): plain TCP, NFQUEUE pass-through, tcpcryptd, stunnel and
# wireguard-go in interleaved rounds; knobs BENCH_* (see the script's header).
netns-bench:
	./scripts/netns-bench.sh

# The container image (deploy/Containerfile) from the .deb; without podman,
# docker or buildah it lays out the build context and says how to build it.
image:
	./scripts/build-image.sh

vectors:
	$(GO) run ./internal/cmd/genvectors -o testdata/vectors/tcpcrypt.json

clean:
	$(GO) clean -testcache

# install, uninstall, deb, man, and `make libtcpcrypt` (the C library:
# build/libtcpcrypt/) (kept last so `all` stays the default target).
include mk/install.mk
