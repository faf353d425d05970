package nfq

import (
	"fmt"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Open opens cfg's NFQUEUE handles (cfg.QueueCount consecutive queues from
// cfg.QueueNum, one netlink socket each) and the raw injection sockets, and
// returns a Dispatcher over them. All sockets belong to the network namespace
// of the calling thread, for their whole life: to serve another namespace,
// call Open on a thread inside it (Run may then run anywhere). Needs
// CAP_NET_ADMIN and CAP_NET_RAW.
func Open(cfg Config) (*Dispatcher, error) {
	if cfg.NewEngine == nil {
		return nil, fmt.Errorf("%w: NewEngine is required", ErrConfig)
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var queues []Queue
	closeAll := func() {
		for _, q := range queues {
			_ = q.Close()
		}
	}
	for i := range cfg.QueueCount {
		q, err := OpenQueue(cfg, cfg.QueueNum+i)
		if err != nil {
			closeAll()
			return nil, err
		}
		queues = append(queues, q)
	}
	inj, err := NewRawInjector(cfg.PeerMark, cfg.Mark)
	if err != nil {
		closeAll()
		return nil, err
	}
	d, err := New(cfg, queues, inj)
	if err != nil {
		closeAll()
		_ = inj.Close()
		return nil, err
	}
	return d, nil
}

// OpenQueue opens the NFQUEUE handle for queue number num with cfg's
// settings: whole packets (CopyRange), GSO super-packets passed as they are
// (NFQA_CFG_F_GSO), fail-open if cfg.FailOpen, cfg.MaxQueueLen, and a
// receive buffer of cfg.ReadBuffer bytes. Packets are not read until the
// handle is registered (Dispatcher.Run does that).
func OpenQueue(cfg Config, num uint16) (*nfqueue.Nfqueue, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	flags := uint32(nfqueue.NfQaCfgFlagGSO)
	if cfg.FailOpen {
		flags |= nfqueue.NfQaCfgFlagFailOpen
	}
	q, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      num,
		MaxPacketLen: CopyRange,
		MaxQueueLen:  cfg.MaxQueueLen,
		Copymode:     nfqueue.NfQnlCopyPacket,
		Flags:        flags,
		AfFamily:     unix.AF_UNSPEC,
	})
	if err != nil {
		return nil, fmt.Errorf("nfq: open queue %d: %w", num, err)
	}
	if err := setReadBuffer(q.Con, cfg.ReadBuffer); err != nil {
		_ = q.Close()
		return nil, fmt.Errorf("nfq: queue %d: %w", num, err)
	}
	return q, nil
}

// setReadBuffer sets the socket receive buffer to n bytes, past the
// net.core.rmem_max limit when the process may (SO_RCVBUFFORCE needs
// CAP_NET_ADMIN), and within it otherwise.
func setReadBuffer(c *netlink.Conn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	if serr == nil {
		return nil
	}
	if err := c.SetReadBuffer(n); err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	return nil
}
