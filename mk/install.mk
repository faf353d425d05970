# Installation and packaging targets for tcpcryptd. The main Makefile includes
# this file; it also works on its own: make -f mk/install.mk install
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   binaries, unit, man pages,
#                                                 completion, default config,
#                                                 libtcpcrypt (mk/libtcpcrypt.mk)
#   make uninstall [PREFIX=...] [DESTDIR=]        removes them (not the config)
#   make deb                                      dist/tcpcryptd_VERSION_ARCH.deb
#   make man                                      regenerate man/ and completion/

GO         ?= go
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/tcpcryptd
SYSCONFDIR ?= /etc
INSTALL    ?= install
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
GOBUILDFLAGS ?= -trimpath
GOLDFLAGS  ?= -s -w -X main.version=$(VERSION)
BUILDDIR   ?= build

INSTALL_CMDS := tcpcryptd tcnetstat tcpcryptctl tcpcryptdump

.PHONY: install uninstall deb man install-binaries

# Binaries are built into $(BUILDDIR) with the version stamped in.
install-binaries:
	@mkdir -p $(BUILDDIR)
	for c in $(INSTALL_CMDS); do \
	  CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags '$(GOLDFLAGS)' -o $(BUILDDIR)/$$c ./cmd/$$c || exit 1; \
	done

install: install-binaries install-libtcpcrypt
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/tcpcrypt
	$(INSTALL) -m 0755 $(BUILDDIR)/tcpcryptd $(DESTDIR)$(SBINDIR)/tcpcryptd
	$(INSTALL) -m 0755 $(BUILDDIR)/tcnetstat $(BUILDDIR)/tcpcryptctl $(BUILDDIR)/tcpcryptdump $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 man/man8/tcpcryptd.8 man/man8/tcnetstat.8 man/man8/tcpcryptctl.8 $(DESTDIR)$(MANDIR)/man8/
	$(INSTALL) -m 0644 man/man1/tcpcryptdump.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 completion/tcpcryptd completion/tcnetstat completion/tcpcryptctl completion/tcpcryptdump $(DESTDIR)$(BASHCOMPDIR)/
	# The unit names the daemon and nft by absolute path: point it at $(SBINDIR).
	sed -e 's#/usr/sbin/tcpcryptd#$(SBINDIR)/tcpcryptd#g' \
	  -e 's#/etc/tcpcrypt/#$(SYSCONFDIR)/tcpcrypt/#g' \
	  scripts/tcpcryptd.service > $(BUILDDIR)/tcpcryptd.service
	$(INSTALL) -m 0644 $(BUILDDIR)/tcpcryptd.service $(DESTDIR)$(UNITDIR)/tcpcryptd.service
	sed -e 's#/usr/sbin/tcpcryptd#$(SBINDIR)/tcpcryptd#g' \
	  -e 's#/etc/tcpcrypt/#$(SYSCONFDIR)/tcpcrypt/#g' \
	  'scripts/tcpcryptd@.service' > '$(BUILDDIR)/tcpcryptd@.service'
	$(INSTALL) -m 0644 '$(BUILDDIR)/tcpcryptd@.service' '$(DESTDIR)$(UNITDIR)/tcpcryptd@.service'
	# The documents the man pages and tcpcryptd -h point at.
	$(INSTALL) -d $(DESTDIR)$(DOCDIR)
	$(INSTALL) -m 0644 README.md docs/tcpcryptd.md docs/ctl-protocol.md docs/operations.md docs/tcpcryptdump.md \
	  docs/libtcpcrypt.md docs/engine-design.md docs/conformance.md docs/performance.md $(DESTDIR)$(DOCDIR)/
	# Never overwrite an administrator's configuration.
	if [ -e $(DESTDIR)$(SYSCONFDIR)/tcpcrypt/tcpcryptd.conf ]; then \
	  echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/tcpcrypt/tcpcryptd.conf"; \
	else \
	  $(INSTALL) -m 0644 scripts/tcpcryptd.conf $(DESTDIR)$(SYSCONFDIR)/tcpcrypt/tcpcryptd.conf; \
	fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi

uninstall: uninstall-libtcpcrypt
	rm -f $(DESTDIR)$(SBINDIR)/tcpcryptd $(DESTDIR)$(BINDIR)/tcnetstat $(DESTDIR)$(BINDIR)/tcpcryptctl $(DESTDIR)$(BINDIR)/tcpcryptdump
	rm -f $(DESTDIR)$(MANDIR)/man8/tcpcryptd.8 $(DESTDIR)$(MANDIR)/man8/tcnetstat.8 $(DESTDIR)$(MANDIR)/man8/tcpcryptctl.8 $(DESTDIR)$(MANDIR)/man1/tcpcryptdump.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/tcpcryptd $(DESTDIR)$(BASHCOMPDIR)/tcnetstat $(DESTDIR)$(BASHCOMPDIR)/tcpcryptctl $(DESTDIR)$(BASHCOMPDIR)/tcpcryptdump
	rm -f $(DESTDIR)$(UNITDIR)/tcpcryptd.service '$(DESTDIR)$(UNITDIR)/tcpcryptd@.service'
	rm -rf $(DESTDIR)$(DOCDIR)
	@echo "left in place: $(DESTDIR)$(SYSCONFDIR)/tcpcrypt/tcpcryptd.conf and /var/lib/tcpcrypt (rules added at run time)"
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi

deb:
	./scripts/build-deb.sh

include mk/libtcpcrypt.mk

# Regenerates the man pages and completion scripts from the commands'
# definitions (the tests compare them, so a flag added without this fails).
man:
	$(GO) test -count=1 -run '^TestManPage$$' ./cmd/tcpcryptd ./cmd/tcnetstat ./cmd/tcpcryptctl ./cmd/tcpcryptdump -args -update
