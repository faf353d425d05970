package eno

// FindENO scans a TCP option area (the bytes after the fixed TCP header). It
// returns the first ENO option's whole bytes (aliasing opts), and how many
// ENO options the area holds. A SYN with count > 1 must be treated as having
// no ENO at all (RFC 8547 §4.1); in a non-SYN segment any count > 0 means
// "ENO present" and the contents are ignored (tcpcrypt gives them no meaning).
//
// NOP (1) is skipped and EOL (0) ends the scan. An option whose length byte
// is missing, below 2 or past the end of opts stops the scan with an error
// matching ErrMalformed and ErrOptionArea; raw and count then describe what
// was found before it.
func FindENO(opts []byte) (raw []byte, count int, err error) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of option list
			return raw, count, nil
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return raw, count, malformed(i, ErrOptionArea)
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return raw, count, malformed(i+1, ErrOptionArea)
		}
		if opts[i] == Kind {
			if count == 0 {
				raw = opts[i : i+n : i+n]
			}
			count++
		}
		i += n
	}
	return raw, count, nil
}

// HasENO reports whether a non-SYN segment's option area carries ENO. A
// malformed area counts as carrying none.
func HasENO(opts []byte) bool {
	_, n, err := FindENO(opts)
	return err == nil && n > 0
}
