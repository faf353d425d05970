package manpage

// The hand-written parts of the three pages. The generated parts (synopsis,
// options, commands) come from each command's *cli.App. Keep these in step
// with docs/tcpcryptd.md and docs/ctl-protocol.md; they are the reference.

const (
	pageDate    = "2026-11-27"
	pageSource  = "tcpcrypt"
	pageManual  = "System Manager's Manual"
	seeAlsoRFCs = "*RFC 8547* (TCP-ENO: encryption negotiation option), *RFC 8548* (tcpcrypt: cryptographic protection of TCP streams)."
)

// controlSocketBody describes the control socket forms; shared by the
// three pages.
const controlSocketBody = "The daemon and its tools talk over a control socket (JSON lines, see `/usr/share/doc/tcpcryptd/ctl-protocol.md`). Its address takes these forms:\n" +
	"\n" +
	": no address given\n" +
	"the unix socket `/run/tcpcrypt/ctl`; clients first look at `$TCPCRYPT_CTL`.\n" +
	": `/path/to/sock`, `./sock`, `unix:sock`\n" +
	"a unix socket at that path. Mode 0666: every local user may ask for session ids, status and the connection list; rule changes are accepted only from uid 0 (checked with SO_PEERCRED).\n" +
	": `:PORT`, `localhost:PORT`\n" +
	"TCP on 127.0.0.1 and ::1, read-only for everyone.\n" +
	": `127.0.0.1:PORT`, `[::1]:PORT`\n" +
	"TCP on that loopback address only, read-only.\n" +
	"\n" +
	"Other hosts are refused: the protocol has no authentication or encryption of its own."

// sessionIDBody explains session ids and how applications use them.
const sessionIDBody = "Encryption alone does not say who is at the other end: an active attacker can sit in the middle of both handshakes. Every encrypted connection has a *session id* (RFC 8547 §5.1), a public value of 33 bytes here, and a TCP-ENO *role*, A or B. Both ends of a connection see the same session id and opposite roles; a man in the middle cannot make them match.\n" +
	"\n" +
	"An application authenticates its peer by binding the session id and its role into its own authentication: a password exchange, a signature, a channel-binding field. If both ends agree, there is no one in the middle. Go programs use the client library in package `ctl`: `ctl.WaitSession(ctx, conn)` (right after the connection opens) or `ctl.ConnInfo(conn)` return the id and role of a `net.Conn`, and fail when the connection is not encrypted, giving the reason. Programs in C and other languages use the user library `libtcpcrypt`(3) (`TCP_CRYPT_SESSID`, `tcpcrypt_getsessid`), or `tcpcryptctl sessid LOCAL REMOTE`, or the control protocol directly; `tcnetstat` lists the ids of every connection. The Go package `ctl/bind` does the whole check: `bind.PSK(ctx, conn, key)` proves a shared key bound to the session id and role at both ends and detects a man in the middle, and `tcnetstat --sas` shows each connection's short authentication string, eight words that two people can compare (`docs/binding.md`).\n" +
	"\n" +
	"Session ids are not secret; they are not keys."

// Tcpcryptd is the hand-written part of `tcpcryptd`(8).
func Tcpcryptd() Page {
	return Page{
		Section: "8", Date: pageDate, Source: pageSource, Manual: pageManual,
		Description: "`tcpcryptd` encrypts the TCP connections of the ports you choose, with no change to the applications. It takes their segments from NFQUEUE, negotiates encryption inside the TCP handshake with TCP-ENO (RFC 8547), and encrypts and authenticates the stream with tcpcrypt (RFC 8548) by rewriting the packets.\n" +
			"\n" +
			"Encryption is *opportunistic*: a peer without tcpcrypt, or a path that strips the TCP option, gets plain TCP exactly as if the daemon were not there, unless the port's rule says `required`. It protects against passive eavesdropping and against tampering with the stream; it does not by itself authenticate the peer (see SESSION IDS).\n" +
			"\n" +
			"The daemon must run as root: it needs CAP_NET_ADMIN (nftables, NFQUEUE, SO_MARK, sock_diag) and CAP_NET_RAW (raw sockets). One daemon runs per network namespace; a second one refuses to start. It owns the nftables table `inet tcpcrypt` and removes it when it stops. To run one in each of several namespaces, use the template unit `tcpcryptd@`*NAME*`.service` (see SYSTEMD).",
		Sections: []Section{
			{"QUEUES", "The ports to encrypt are sent to the daemon through NFQUEUE. `-p` gives the first queue number, or a range such as `7463-7466`. Each queue has its own engine, read and answered on its own goroutine; with one number the daemon reads `--workers` queues from it (one per CPU by default). The rules spread connections over the queues by a hash of both addresses and both ports that is the same in both directions (nftables `symhash`), so every packet of a connection reaches one queue while connections between the same two hosts use all of them. On a kernel without nftables' hash expression the daemon says so and falls back to the NFQUEUE target's hash of the two addresses alone, with which all connections between two hosts share one queue. This number plays the part of the \"divert port\" of the original tcpcrypt daemon: nothing else on the host may use the same queues."},
			{"RULES", "`--rule` *PORT*[:*SIDE*][:*MODE*][+*OPTION*]...[@*PREFIX*] covers a port:\n" +
				"\n" +
				": *SIDE*\n" +
				"`local` (default): a port of this host, the services it offers; `remote`: a port of the peer, the connections this host opens; `both`.\n" +
				": *MODE*\n" +
				"`opportunistic` (default): encrypt when the peer can, plain TCP otherwise; `required`: refuse connections that cannot be encrypted; `exclude`: leave alone (exclude entries punch holes in wider ones).\n" +
				": *PREFIX*\n" +
				"only peers inside this address prefix, e.g. `443:local:required@10.0.0.0/8`.\n" +
				": *OPTION*\n" +
				"a per-connection control for the connections the rule covers, each at most once, in any order, none on an `exclude` rule, e.g. `443:required+noresume+nocache@10.0.0.0/8`. `noresume`: never resume a session from a cached secret, always a fresh key exchange (RFC 8548 §3.5 \"ignore resumption\"); `nocache`: cache no secret from these connections, so none of them can be resumed later (\"do not cache\"); `appaware`: the mandatory application-aware mode of RFC 8547 §4.2, set the TCP-ENO *a* bit and encrypt only when the peer sets it too, otherwise plain TCP (or, with `required`, no connection). The state file lists them as `\"options\": [\"noresume\", ...]`; a rule without options is written, and read, as before. `tcpcryptctl flush-cache` removes the cached secret of one established connection.\n" +
				"\n" +
				"The rules in force are the configured ones plus those added at run time with `tcpcryptctl rules add`, which are kept in the state file and applied again at the next start. Changes apply at once to new connections. A connection the daemon encrypts stays encrypted until it ends whatever the rules say by then: it is kept in the table's guard sets, whose rule queues its packets before any per-port rule."},
			{"FAIL-OPEN AND FAIL-CLOSED", "These options decide what covered traffic does while the daemon is *not* running (stopped, crashed, restarting). With `--fail-open` (the default) the queue rules of opportunistic entries carry the bypass flag, so the traffic of connections that were never encrypted passes untouched, in plaintext. With `--fail-closed` the traffic of every covered port is dropped until the daemon is back. Entries with mode `required` never bypass. Whatever the choice, the packets of connections the daemon had encrypted are dropped, never passed: a killed daemon leaves its table, whose guard sets list those connections, and the next instance destroys them before its rules go live. While the daemon runs, an overflowing queue drops packets (TCP sends them again); it never passes them in plaintext."},
			{"CONFIGURATION FILE", "`--config` *FILE* reads `key = value` lines; the keys are the long option names without the dashes, `#` starts a comment line, `rule` may be repeated and every other key appears at most once. Booleans are `true` or `false` (also yes/no, on/off, 1/0); `verbose` is a number, 0 to 2. A bad line stops the daemon with the file name and line number. Options on the command line override the file, and `--rule` replaces the file's rules.\n" +
				"\n" +
				"  # /etc/tcpcrypt/tcpcryptd.conf\n" +
				"  queue = 7463-7464\n" +
				"  verbose = 1\n" +
				"  rule = 443\n" +
				"  rule = 25:remote\n" +
				"  fail-closed = true"},
			{"CONTROL SOCKET", controlSocketBody},
			{"START-UP CHECK", "Once the rules are in place the daemon proves that it really encrypts, logs the outcome and shows it in `tcpcryptctl status` (passed, failed or skipped, with a detail).\n" +
				"\n" +
				"- By default it runs a loopback self-test: it listens on a throwaway port of 127.0.0.1 (and ::1 when present), covers it with a temporary rule, connects to itself, and requires both ends to report the same session id with opposite roles. The temporary rules are applied in one change and removed in one change, after the check connections have closed through the daemon and their flows have been forgotten, so `tcnetstat` lists none of them afterwards.\n" +
				"- `-s` *HOST*[:*PORT*] asks a remote check server instead (port 7 by default): the server reports the session id it sees and the daemon compares it with its own. The name is resolved only when this check runs.\n" +
				"- `-f` skips the check, and never causes a name lookup.\n" +
				"\n" +
				"A failed check is logged as an error but does not stop the daemon: covered connections are still offered encryption. `--check-listen` *ADDR* runs a check server in the daemon; a client sends one line and reads back its session id in hex, or `none: REASON`."},
			{"SESSION IDS", sessionIDBody},
			{"RESTART SAFETY", "A connection that a previous daemon encrypted cannot be continued by a new one, which has no keys for it. When the daemon finds the table of a previous instance that did not exit cleanly, it destroys the covered connections through sock_diag (SOCK_DESTROY) before its own rules go live, so that applications reconnect, encrypted, instead of sending plaintext. The counts are logged."},
			{"KEY LOG", "`--keylog` *FILE* appends one line per key exchange (`TCPCRYPT_ES` *N_A* *ES*) and per session (`TCPCRYPT_SS` *SESSION-ID* *SS*), for decrypting captures with a packet analyser. Anyone who can read the file can decrypt the logged connections: it is created with mode 0600 (an existing file of the daemon's own is set to 0600), and a symbolic link, anything but a regular file, a file of another user or a file with several hard links is refused. The daemon warns loudly while it is on. Under the systemd unit the file must lie in a writable directory such as `/var/lib/tcpcrypt`."},
			{"LOGGING", "Logs go to standard error as `log/slog` text. By default: warnings and errors, and a few `NOTICE` lines for the milestones (ready, stopped, the rules a reload applied); the results of restart safety (how many connections were reset) are warnings. `-v` adds the other lifecycle events at info (start, rules loaded, control and metrics servers, check details). `-vv` adds debugging, including one line per connection that fell back to plain TCP or was encrypted (rate-limited); aborted connections are warnings at every level, also rate-limited. Nothing is logged per packet; the per-reason counters are in `tcpcryptctl status`."},
			{"SYSTEMD", "When `$NOTIFY_SOCKET` is set (Type=notify units), the daemon sends READY=1 once the rules are installed, the queues are bound and the start-up check has run, STOPPING=1 when it shuts down, a one-line STATUS=, and WATCHDOG=1 every half of `$WATCHDOG_USEC` when the unit sets WatchdogSec=. The unit shipped in `tcpcryptd.service` uses all of them.\n" +
				"\n" +
				"The template unit `tcpcryptd@`*NAME*`.service` runs one daemon inside the network namespace `/run/netns/`*NAME* (made with `ip netns add` *NAME*), with its own files: configuration `/etc/tcpcrypt/`*NAME*`.conf`, state file `/var/lib/tcpcrypt/`*NAME*`/rules.json`, control socket `/run/tcpcrypt/`*NAME*`/ctl` (`tcpcryptctl -n` *NAME*). Each namespace has its own nftables table and instance lock, so the daemons do not collide."},
			{"SIGNALS", ": SIGTERM, SIGINT\n" +
				"stop accepting control clients, reset every encrypted connection (see below), remove the `inet tcpcrypt` table, stop reading the queues and exit with status 0. Segments still held are dropped; TCP sends them again.\n" +
				": SIGHUP\n" +
				"read the configuration file (the command-line options still win) and the state file again and apply the rules. A bad file is logged and ignored. Settings other than rules take effect at the next start; a warning names them.\n" +
				"\n" +
				"A stop resets every connection the daemon encrypted, by design: nothing else holds its keys, and once the daemon is gone such a connection could only go on in plaintext, which it never does. Its sockets are destroyed (sock_diag) so that the applications see the reset at once and can reconnect. A package upgrade or `systemctl restart` is a stop followed by a start, so it resets them too: plan it like a restart of the services on the covered ports. Connections that fell back to plain TCP, and uncovered ports, are not touched."},
			{"FILES", ": `/etc/tcpcrypt/tcpcryptd.conf`\n" +
				"configuration file read by the systemd unit (`--config`).\n" +
				": `/var/lib/tcpcrypt/rules.json`\n" +
				"state file: the rules added at run time (mode 0600, written atomically).\n" +
				": `/run/tcpcrypt/ctl`\n" +
				"default control socket.\n" +
				": `/etc/tcpcrypt/`*NAME*`.conf`\n" +
				"configuration file of `tcpcryptd@`*NAME*`.service`; its state file is `/var/lib/tcpcrypt/`*NAME*`/rules.json` and its control socket `/run/tcpcrypt/`*NAME*`/ctl`.\n" +
				": `/lib/systemd/system/tcpcryptd.service`\n" +
				"the systemd unit (`/usr/local/lib/systemd/system` after `make install`); the template unit `tcpcryptd@.service` lies beside it.\n" +
				": `/proc/net/netfilter/nfnetlink_queue`\n" +
				"the kernel's view of the bound queues."},
			{"ENVIRONMENT", ": `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`\n" +
				"set by systemd; see SYSTEMD."},
			{"EXIT STATUS", ": 0\n" +
				"stopped by SIGTERM or SIGINT; or `--help`, `--version` (`-V`; `-v` is `--verbose`).\n" +
				": 1\n" +
				"the daemon failed: not root, another daemon running, control socket in use, nftables or NFQUEUE errors, a state file that does not parse.\n" +
				": 2\n" +
				"a usage error: an unknown option or argument, a bad value, a bad configuration file."},
			{"SEE ALSO", "`tcpcryptctl`(8), `tcnetstat`(8), `libtcpcrypt`(3), `nft`(8), `systemd.service`(5), `sd_notify`(3).\n" +
				"\n" +
				seeAlsoRFCs},
		},
		FlagValues: map[string][]string{
			"teps":  {"x25519", "x448", "p256", "p521", "x25519,p256"},
			"aeads": {"aes128gcm", "chacha20poly1305", "aes256gcm"},
		},
	}
}

// Tcnetstat is the hand-written part of `tcnetstat`(8).
func Tcnetstat() Page {
	return Page{
		Section: "8", Date: pageDate, Source: pageSource, Manual: pageManual,
		Description: "`tcnetstat` lists the connections that `tcpcryptd` tracks, one row each: local and remote endpoint, state, TCP-ENO role (A or B), key agreement (TEP), cipher (AEAD), session id, whether the session was resumed, plaintext bytes in and out, age, and the reason of a fallback. A connection of a covered port that fell back to plain TCP (for example because the peer has no tcpcrypt) is listed with state `plain` and its reason (e.g. `no_peer_eno`) for as long as its socket exists; a connection of a port no rule covers is not listed. A dash marks an empty field, e.g. the session id of a plain connection.\n" +
			"\n" +
			"With `--json` it prints a JSON array of connection objects (`[]` when there are none) with the members of the control protocol's Conn: `local`, `remote`, `state`, `role`, `tep`, `aead`, `session_id`, `resumed`, `bytes_in`, `bytes_out`, `frames_in`, `frames_out`, `age_seconds`, `last_error` (the abort reason, or the fallback explained) and `fallback_reason` (the fallback reason's name, for `plain` rows).\n" +
			"\n" +
			"With `--sas` it adds a last column SAS (with `--json`, a member `sas`): the connection's *short authentication string*, eight words derived from the session id (see SHORT AUTHENTICATION STRINGS); a dash (an empty string in JSON) when the connection has no session id.\n" +
			"\n" +
			"Any local user may run it.",
		Sections: []Section{
			{"CONTROL SOCKET", controlSocketBody},
			{"SESSION IDS", sessionIDBody},
			{"SHORT AUTHENTICATION STRINGS", "The SAS of a connection is eight words, e.g. `comet-harbor-quail-ribbon-tiger-acorn-lemon-yacht`, taken from a fixed list of 256 by the first eight bytes of SHA-256 over a label and the session id (64 bits). Both ends of one tcpcrypt session show the same SAS. Two people who read theirs to each other, over the phone or from two screens, and find them equal know that no one terminates tcpcrypt between the two hosts, provided both daemons are honest. A man in the middle who wants to match the strings has to compute about 2^64 hashes while the handshake waits; with fewer words that would be within reach.\n" +
				"\n" +
				"Programs do the same without people: the Go package `ctl/bind` proves knowledge of a shared key bound to the session id and role (`bind.PSK`), and returns the SAS of a connection (`bind.ConnSAS`). See `docs/binding.md`."},
			{"ENVIRONMENT", ": `TCPCRYPT_CTL`\n" +
				"the control address used when `-u` is not given."},
			{"EXIT STATUS", ": 0\n" +
				"success.\n" +
				": 1\n" +
				"the daemon is unavailable or reported an error; the reason goes to standard error.\n" +
				": 2\n" +
				"a usage error."},
			{"SEE ALSO", "`tcpcryptd`(8), `tcpcryptctl`(8).\n\n" + seeAlsoRFCs},
		},
		FileFlags:    []string{"address"},
		Placeholders: map[string]string{"address": "ADDRESS"},
	}
}

// Tcpcryptctl is the hand-written part of `tcpcryptctl`(8).
func Tcpcryptctl() Page {
	return Page{
		Section: "8", Date: pageDate, Source: pageSource, Manual: pageManual,
		Description: "`tcpcryptctl` is the administrator's interface to a running `tcpcryptd`: it lists, adds and removes the per-port policy rules, shows the daemon's status and counters, looks up the session id of a connection, and flushes the resumption secret a connection left in the daemon's cache.\n" +
			"\n" +
			"`rules list` prints each rule with where it comes from (SOURCE: `command line`, the configuration file's path, or `state` for rules added here). " +
			"Rules added here are kept in the daemon's state file and survive restarts; `rules del` removes only such rules (a configured rule is changed where it is configured). `rules add` of a rule that is already in force, with the same port, side, prefix, mode and options, changes nothing and succeeds (it prints `exists` instead of `added`), so scripts can run it again; a rule that overlaps one in force but differs is refused. A prefix must be written in canonical form: `10.1.2.3/8` is refused (did you mean `10.0.0.0/8`?), here as in the daemon's `--rule`, its configuration file and its state file. Rule changes need root, over the unix socket; `flush-cache` needs root or the user who owns the connection's socket on this host, over the unix socket. Everything else is open to every local user.\n" +
			"\n" +
			"`--option` gives a rule per-connection controls (repeat it, or separate names with commas): `noresume` (always a fresh key exchange, never a resumed session), `nocache` (cache no secret from the connection) and `appaware` (the mandatory application-aware mode of RFC 8547 §4.2: encrypt only if the peer also sets the TCP-ENO *a* bit, plain TCP otherwise); see RULES in `tcpcryptd`(8). `rules list` shows an OPTIONS column when some rule has options. `rules del` must name the same options as the rule.\n" +
			"\n" +
			"`flush-cache` *LOCAL* *REMOTE* asks the daemon to remove the cached session secret that the connection used or created (RFC 8548 §3.5 \"flush cache state\"), so no later connection between the two hosts can resume from it, and to cache none from the connection later. It prints `flushed` *N* *LOCAL* `->` *REMOTE*, *N* being how many secrets went (0 when the connection left none, for example because it was never encrypted or its rule says `nocache`), and fails with status 1 when the daemon does not track the connection (it must still be open, or closed less than about 30 seconds ago).\n" +
			"\n" +
			"`-n` *NAME* talks to the daemon of network namespace *NAME*, the one the unit `tcpcryptd@`*NAME*`.service` runs, at `/run/tcpcrypt/`*NAME*`/ctl`.",
		Sections: []Section{
			{"EXAMPLES", "  tcpcryptctl rules add 443\n" +
				"  tcpcryptctl rules add 25 --side remote --mode required\n" +
				"  tcpcryptctl rules add 80 --prefix 10.0.0.0/8 --mode exclude\n" +
				"  tcpcryptctl rules list\n" +
				"  tcpcryptctl status\n" +
				"  tcpcryptctl rules add 8443 --mode required --option noresume,appaware\n" +
				"  tcpcryptctl sessid 192.0.2.1:40000 198.51.100.7:443\n" +
				"  tcpcryptctl flush-cache 192.0.2.1:40000 198.51.100.7:443"},
			{"STATUS AND COUNTERS", "`status` shows the daemon's version, uptime, queues, number of rules and tracked connections, the start-up check result, the fail-open or fail-closed choice, and the counters that are not zero (`--all` shows every one; `--json` always has them all). The counters explain what happened to connections: `engine_flows_encrypted` and `engine_flows_resumed` count successes, `engine_fallback_*` counts connections that fell back to plain TCP by reason (for example `engine_fallback_no_peer_eno`: the peer, or a middlebox, did not answer the TCP-ENO option), `engine_abort_*` connections aborted by reason, and `engine_drop_*` dropped segments by reason."},
			{"CONTROL SOCKET", controlSocketBody},
			{"SESSION IDS", sessionIDBody + "\n" +
				"\n" +
				"`sessid` prints *SESSION-ID-HEX* *ROLE*, and fails with status 1 and the reason when the connection has no session id: it is not tracked, or TCP-ENO fell back, or the handshake has not finished."},
			{"ENVIRONMENT", ": `TCPCRYPT_CTL`\n" +
				"the control address used when neither `-u` nor `-n` is given."},
			{"EXIT STATUS", ": 0\n" +
				"success, including `rules add` of a rule already in force.\n" +
				": 1\n" +
				"the daemon is unavailable or refused the request, including \"no session id\", a `flush-cache` of a connection it does not track, rule changes by non-root users, and `flush-cache` by a user who does not own the connection.\n" +
				": 2\n" +
				"a usage error: no command or an unknown one, an unknown option, a bad argument (port, side, mode, option, prefix, address, namespace name)."},
			{"SEE ALSO", "`tcpcryptd`(8), `tcnetstat`(8).\n\n" + seeAlsoRFCs},
		},
		FileFlags:    []string{"address"},
		Placeholders: map[string]string{"address": "ADDRESS", "side": "SIDE", "prefix": "CIDR", "mode": "MODE", "option": "OPTION"},
		FlagValues: map[string][]string{
			"side":   {"local", "remote", "both"},
			"mode":   {"opportunistic", "required", "exclude"},
			"option": {"noresume", "nocache", "appaware"},
		},
		ArgsFrom: map[string]string{"rules del": "rules list --ports"},
	}
}

// Tcpcryptdump is the hand-written part of `tcpcryptdump`(1).
func Tcpcryptdump() Page {
	return Page{
		Section: "1", Date: pageDate, Source: pageSource, Manual: "User Commands",
		Description: "`tcpcryptdump` reads a packet capture and the key logs that `tcpcryptd --keylog` writes, and checks every TCP connection in the capture: the TCP-ENO options of the SYN and SYN-ACK, the Init1 and Init2 messages, the authentication of every frame under the keys derived from the logged secrets, rekeys, and the FINp frame before each TCP FIN; a direction the capture never sees closed (no FIN, no RST) is not verified to its end and is a violation. Each direction is reassembled by sequence number; bytes sent again (retransmissions, segments cut or joined differently) must equal the first copy. Bytes missing from the capture, between captured bytes or acknowledged by the peer but never captured, are reported as gaps: they are never passed over.\n" +
			"\n" +
			"The capture may be pcap or pcapng, with Ethernet (VLAN tags allowed), raw IP, Linux cooked (SLL, SLL2) or BSD loopback link types, as `tcpdump -w` writes them. Packets cut by the snap length are skipped and counted, so their bytes show up as gaps.\n" +
			"\n" +
			"For each connection it prints the client and server, the hosts in the TCP-ENO roles A and B (A is normally the client), the TEP, the AEAD, the session id, whether the session was resumed, and for each direction the bytes of verified plaintext, frames, rekeys, whether FINp was seen and the SHA-256 of the plaintext; then every violation. A connection whose handshake did not settle on TCP-ENO is listed as plain TCP with the reason, which is not a violation.\n" +
			"\n" +
			"A fresh session is keyed from the `TCPCRYPT_ES` line of its Init1 nonce; a resumed one from the `TCPCRYPT_SS` secret (or its successor) whose resumption identifiers both SYNs carry. The key log of either host suffices. The key log holds secrets that decrypt the logged traffic: keep it, and the files `--dump` writes (mode 0600), private.",
		Sections: []Section{
			{"JSON OUTPUT", "With `--json` each connection is one JSON object on a line, with the members `index`, `client`, `server`, `a`, `b`, `encrypted`, `plain` (why it is not tcpcrypt), `tep`, `aead`, `session_id`, `resumed`, `bytes_a_to_b`, `bytes_b_to_a`, `sha256_a_to_b`, `sha256_b_to_a` (full lowercase hex), `frames_a_to_b`, `frames_b_to_a`, `rekeys_a_to_b`, `rekeys_b_to_a`, `finp_a_to_b`, `finp_b_to_a`, `reset` and `violations` (an array of strings, empty when the connection verified)."},
			{"DUMP FILES", "With `--dump` *DIR* the verified plaintext of connection *N* (numbered from 1 in capture order) goes to *DIR*`/conn`*N*`.a_to_b` and *DIR*`/conn`*N*`.b_to_a`. Only bytes that verified are written: after a violation a file stops where verification stopped."},
			{"REWRITTEN CAPTURE", "With `-w` *OUT* every IP packet of the capture is written to *OUT* as a pcap file of raw IP packets (mode 0600); frames without IP, such as ARP, are left out. In the connections whose keys were found, each segment carries the verified plaintext of the stream bytes it carried (Init messages and frame headers and tags are left out, and so are bytes that did not verify), its sequence and acknowledgment numbers count plaintext bytes, SACK options are removed and the checksums are recomputed, so that `wireshark`(1) or `tshark`(1) dissect the application protocol. Other packets are copied unchanged."},
			{"EXAMPLES", "  tcpdump -i eth0 -w cap.pcap tcp port 443\n" +
				"  tcpcryptdump -r cap.pcap -k /var/log/tcpcrypt.keys\n" +
				"  tcpcryptdump -r cap.pcapng -k a.keys -k b.keys --json --dump out\n" +
				"  tcpcryptdump -r cap.pcap -k keys -w plain.pcap && tshark -r plain.pcap"},
			{"EXIT STATUS", ": 0\n" +
				"every tcpcrypt connection verified.\n" +
				": 1\n" +
				"a violation in some connection, or a malformed capture.\n" +
				": 2\n" +
				"a usage error, a capture or key log that cannot be opened, or an output (`-w`, `--dump`) that cannot be created."},
			{"SEE ALSO", "`tcpcryptd`(8), `tcnetstat`(8), `tcpdump`(8).\n\n" + seeAlsoRFCs},
		},
		FileFlags:    []string{"read", "keylog", "dump", "write"},
		Placeholders: map[string]string{"read": "CAPTURE", "keylog": "KEYLOG", "dump": "DIR", "write": "OUT"},
	}
}
