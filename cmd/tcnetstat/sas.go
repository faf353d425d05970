package main

import (
	"encoding/json"
	"io"

	"github.com/tcpcryptd/tcpcrypt/ctl"
	"github.com/tcpcryptd/tcpcrypt/ctl/bind"
)

// The --sas column: each connection's short authentication string
// (bind.SAS of its session id), for people comparing two ends by voice or
// on two screens.

// sasColumn is the table cell: the SAS, or "-" without a session id.
func sasColumn(c ctl.Conn) string { return dash(bind.SAS(c.SessionID)) }

// sasConn is a --json --sas object: the connection with "sas" added (""
// without a session id).
type sasConn struct {
	ctl.Conn
	SAS string `json:"sas"`
}

// writeJSONSAS prints conns as writeJSON does, each with its "sas".
func writeJSONSAS(w io.Writer, conns []ctl.Conn) error {
	out := make([]sasConn, 0, len(conns))
	for _, c := range conns {
		out = append(out, sasConn{Conn: c, SAS: bind.SAS(c.SessionID)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
