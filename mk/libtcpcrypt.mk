# libtcpcrypt, the C library applications use to get their connections'
# session ids (libtcpcrypt/, libtcpcrypt(3)). Included by mk/install.mk.
#
#   make libtcpcrypt          $(BUILDDIR)/libtcpcrypt/: libtcpcrypt.so.0 (soname),
#                             libtcpcrypt.a, libtcpcrypt.pc
#   make install-libtcpcrypt  header, shared and static library, pkg-config file,
#                             man page (make install does this too)
#
# Needs a C99 compiler (CC, default cc) and ar; nothing else.

PREFIX       ?= /usr/local
BUILDDIR     ?= build
INSTALL      ?= install
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR       ?= $(PREFIX)/share/man

LIBTC_VERSION := 0.1.0
LIBTC_SONAME  := libtcpcrypt.so.0
LIBTC_REAL    := libtcpcrypt.so.$(LIBTC_VERSION)
LIBTC_SRC     := libtcpcrypt/src
LIBTC_OUT     := $(BUILDDIR)/libtcpcrypt
LIBTC_OBJS    := $(LIBTC_OUT)/obj/tcpcrypt.o $(LIBTC_OUT)/obj/reply.o
LIBTC_HDRS    := libtcpcrypt/include/tcpcrypt/tcpcrypt.h $(LIBTC_SRC)/reply.h
LIBTC_CFLAGS  ?= -O2 -g
# Position-independent objects serve both the shared library and the
# archive (which can then go into PIE programs and other shared objects).
LIBTC_BUILD_CFLAGS := -std=c99 -Wall -Wextra -Wpedantic -fPIC -fvisibility=hidden -pthread \
  -Ilibtcpcrypt/include $(LIBTC_CFLAGS) $(CPPFLAGS) $(CFLAGS)

.PHONY: libtcpcrypt install-libtcpcrypt uninstall-libtcpcrypt

libtcpcrypt: $(LIBTC_OUT)/$(LIBTC_REAL) $(LIBTC_OUT)/libtcpcrypt.a $(LIBTC_OUT)/libtcpcrypt.pc

$(LIBTC_OUT)/obj/%.o: $(LIBTC_SRC)/%.c $(LIBTC_HDRS)
	@mkdir -p $(@D)
	$(CC) $(LIBTC_BUILD_CFLAGS) -c $< -o $@

# Only the API symbols are exported (the version script); -z defs makes an
# unresolved symbol a link error rather than a run-time one.
$(LIBTC_OUT)/$(LIBTC_REAL): $(LIBTC_OBJS) $(LIBTC_SRC)/libtcpcrypt.map
	$(CC) -shared -pthread -Wl,-soname,$(LIBTC_SONAME) -Wl,--version-script=$(LIBTC_SRC)/libtcpcrypt.map \
	  -Wl,-z,defs -Wl,-z,relro -Wl,-z,now $(LDFLAGS) -o $@ $(LIBTC_OBJS)
	ln -sf $(LIBTC_REAL) $(LIBTC_OUT)/$(LIBTC_SONAME)
	ln -sf $(LIBTC_SONAME) $(LIBTC_OUT)/libtcpcrypt.so

$(LIBTC_OUT)/libtcpcrypt.a: $(LIBTC_OBJS)
	rm -f $@
	$(AR) rcs $@ $(LIBTC_OBJS)

# Rewritten on every build: it holds the install paths of this invocation.
$(LIBTC_OUT)/libtcpcrypt.pc: libtcpcrypt/libtcpcrypt.pc.in FORCE
	@mkdir -p $(@D)
	sed -e 's#@PREFIX@#$(PREFIX)#g' -e 's#@LIBDIR@#$(LIBDIR)#g' \
	  -e 's#@INCLUDEDIR@#$(INCLUDEDIR)#g' -e 's#@VERSION@#$(LIBTC_VERSION)#g' $< > $@

.PHONY: FORCE
FORCE:

install-libtcpcrypt: libtcpcrypt
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/tcpcrypt $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man3
	$(INSTALL) -m 0644 libtcpcrypt/include/tcpcrypt/tcpcrypt.h $(DESTDIR)$(INCLUDEDIR)/tcpcrypt/tcpcrypt.h
	$(INSTALL) -m 0644 $(LIBTC_OUT)/$(LIBTC_REAL) $(DESTDIR)$(LIBDIR)/$(LIBTC_REAL)
	ln -sf $(LIBTC_REAL) $(DESTDIR)$(LIBDIR)/$(LIBTC_SONAME)
	ln -sf $(LIBTC_SONAME) $(DESTDIR)$(LIBDIR)/libtcpcrypt.so
	$(INSTALL) -m 0644 $(LIBTC_OUT)/libtcpcrypt.a $(DESTDIR)$(LIBDIR)/libtcpcrypt.a
	$(INSTALL) -m 0644 $(LIBTC_OUT)/libtcpcrypt.pc $(DESTDIR)$(PKGCONFIGDIR)/libtcpcrypt.pc
	$(INSTALL) -m 0644 man/man3/libtcpcrypt.3 $(DESTDIR)$(MANDIR)/man3/libtcpcrypt.3
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi

uninstall-libtcpcrypt:
	rm -f $(DESTDIR)$(LIBDIR)/$(LIBTC_REAL) $(DESTDIR)$(LIBDIR)/$(LIBTC_SONAME) $(DESTDIR)$(LIBDIR)/libtcpcrypt.so
	rm -f $(DESTDIR)$(LIBDIR)/libtcpcrypt.a $(DESTDIR)$(PKGCONFIGDIR)/libtcpcrypt.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/tcpcrypt/tcpcrypt.h $(DESTDIR)$(MANDIR)/man3/libtcpcrypt.3
	-rmdir $(DESTDIR)$(INCLUDEDIR)/tcpcrypt 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi
