package nfq

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// KernelQueue is an NFQUEUE handle on a netlink socket: the Queue the daemon
// reads. go-nfqueue opens the socket; the binding and configuration messages
// and the data path are ours, because go-nfqueue binds a queue only in
// RegisterWithErrorFunc, which also starts its own reader goroutine: that
// reader receives one message per system call into a freshly allocated
// buffer and parses it into an Attribute of pointers, and its hook runs on
// its goroutine, which forces a hand-off or a lock per packet (issue 9).
// KernelQueue reads many datagrams per recvmmsg(2) into buffers the caller
// reuses, and Send writes a whole batch of verdicts with one sendmsg(2)
// whose iovecs point at the packet bytes.
type KernelQueue struct {
	nq     *nfqueue.Nfqueue
	rc     syscall.RawConn
	num    uint16
	closed atomic.Bool
	// Recv's system-call arguments, reused (Recv has one caller at a time).
	hdrs []mmsghdr
	iovs []unix.Iovec
	// sendLimit is the largest datagram the socket takes (SendLimit).
	sendLimit int
}

// mmsghdr is struct mmsghdr of recvmmsg(2); Go lays it out as C does (the
// trailing padding on 64-bit systems included).
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
}

// recvBatch is how many datagrams one Recv asks for at most.
const recvBatch = 16

// NFQUEUE configuration (include/uapi/linux/netfilter/nfnetlink_queue.h).
const (
	nfqnlMsgConfig     = 2 // NFQNL_MSG_CONFIG
	nfqaCfgCmd         = 1 // struct nfqnl_msg_config_cmd
	nfqaCfgParams      = 2 // struct nfqnl_msg_config_params
	nfqaCfgQueueMaxLen = 3
	nfqaCfgMask        = 4
	nfqaCfgFlags       = 5
	nfqnlCfgCmdBind    = 1
	nfqnlCopyPacket    = 2
)

// OpenQueue opens the NFQUEUE handle for queue number num with cfg's
// settings, binds it and configures it: whole packets (CopyRange), GSO
// super-packets passed as they are (NFQA_CFG_F_GSO), fail-open if
// cfg.FailOpen, cfg.MaxQueueLen, and a receive buffer of cfg.ReadBuffer
// bytes. From then on the kernel queues packets to it, whether or not anyone
// reads them yet. The socket belongs to the calling thread's network
// namespace.
func OpenQueue(cfg Config, num uint16) (*KernelQueue, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	nq, err := nfqueue.Open(&nfqueue.Config{
		NfQueue:      num,
		MaxPacketLen: CopyRange,
		MaxQueueLen:  cfg.MaxQueueLen,
		Copymode:     nfqueue.NfQnlCopyPacket,
		AfFamily:     unix.AF_UNSPEC,
	})
	if err != nil {
		return nil, fmt.Errorf("nfq: open queue %d: %w", num, err)
	}
	q := &KernelQueue{nq: nq, num: num, hdrs: make([]mmsghdr, recvBatch), iovs: make([]unix.Iovec, recvBatch)}
	fail := func(err error) (*KernelQueue, error) {
		_ = nq.Close()
		return nil, fmt.Errorf("nfq: queue %d: %w", num, err)
	}
	if q.rc, err = nq.Con.SyscallConn(); err != nil {
		return fail(err)
	}
	if err := setReadBuffer(nq.Con, cfg.ReadBuffer); err != nil {
		return fail(err)
	}
	if q.sendLimit, err = setSendBuffer(nq.Con, sendBuffer); err != nil {
		return fail(err)
	}
	if err := q.bind(cfg); err != nil {
		return fail(err)
	}
	return q, nil
}

// bind sends the configuration: bind the queue to this socket, ask for whole
// packets, set the flags and the queue length. Each message is acknowledged,
// so a refusal (another process bound to the queue: EBUSY) is an error here.
func (q *KernelQueue) bind(cfg Config) error {
	be := binary.BigEndian
	flags := uint32(nfqueue.NfQaCfgFlagGSO)
	if cfg.FailOpen {
		flags |= nfqueue.NfQaCfgFlagFailOpen
	}
	params := be.AppendUint32(nil, CopyRange)
	params = append(params, nfqnlCopyPacket)
	steps := []struct {
		what  string
		attrs []netlink.Attribute
	}{
		{"bind", []netlink.Attribute{{Type: nfqaCfgCmd, Data: []byte{nfqnlCfgCmdBind, 0, 0, unix.AF_UNSPEC}}}},
		{"copy mode", []netlink.Attribute{{Type: nfqaCfgParams, Data: params}}},
		{"flags", []netlink.Attribute{
			{Type: nfqaCfgFlags, Data: be.AppendUint32(nil, flags)},
			{Type: nfqaCfgMask, Data: be.AppendUint32(nil, flags)},
			{Type: nfqaCfgQueueMaxLen, Data: be.AppendUint32(nil, cfg.MaxQueueLen)},
		}},
	}
	for _, s := range steps {
		attrs, err := netlink.MarshalAttributes(s.attrs)
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		data := append([]byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, attrs...)
		be.PutUint16(data[2:4], q.num)
		_, err = q.nq.Con.Execute(netlink.Message{
			Header: netlink.Header{
				Type:  netlink.HeaderType(nfnlSubsysQueue<<8 | nfqnlMsgConfig),
				Flags: netlink.Request | netlink.Acknowledge,
			},
			Data: data,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// Recv implements Queue with one recvmmsg(2), waiting in the runtime's poller
// while nothing is ready.
func (q *KernelQueue) Recv(bufs [][]byte, sizes []int) (int, error) {
	n := min(len(bufs), len(sizes), len(q.hdrs))
	if n == 0 {
		return 0, nil
	}
	for i := range n {
		q.iovs[i].Base = &bufs[i][0]
		q.iovs[i].SetLen(len(bufs[i]))
		q.hdrs[i] = mmsghdr{}
		q.hdrs[i].hdr.Iov = &q.iovs[i]
		q.hdrs[i].hdr.SetIovlen(1)
	}
	var got int
	var serr error
	err := q.rc.Read(func(fd uintptr) bool {
		// MSG_TRUNC: a netlink socket then reports a datagram's full
		// length even when the buffer was too short for it.
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&q.hdrs[0])), uintptr(n),
			unix.MSG_DONTWAIT|unix.MSG_TRUNC, 0, 0)
		switch e {
		case 0:
			got = int(r)
		case unix.EAGAIN, unix.EINTR:
			return false
		default:
			serr = e
		}
		return true
	})
	if q.closed.Load() {
		return 0, net.ErrClosed
	}
	if err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, serr
	}
	for i := range got {
		sizes[i] = int(q.hdrs[i].len)
	}
	return got, nil
}

// Send implements Queue with one sendmsg(2).
func (q *KernelQueue) Send(iov [][]byte) error {
	var serr error
	err := q.rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgBuffers(int(fd), iov, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// Close closes the socket: the kernel unbinds the queue and drops what still
// waits for a verdict. It is idempotent.
func (q *KernelQueue) Close() error {
	if q.closed.Swap(true) {
		return nil
	}
	if err := q.nq.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
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

// sendBuffer is the send buffer asked for: room for verdict batches of
// maxBatchBytes.
const sendBuffer = 2 * maxBatchBytes

// setSendBuffer sets the socket send buffer to n bytes, past net.core.wmem_max
// when the process may (SO_SNDBUFFORCE), and returns the largest datagram the
// socket then takes: netlink refuses a sendmsg longer than the send buffer
// less 32 bytes. Without the privilege the default buffer stays, and so does
// the default batch size.
func setSendBuffer(c *netlink.Conn, n int) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("send buffer: %w", err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
		got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	}); err != nil {
		return 0, fmt.Errorf("send buffer: %w", err)
	}
	if gerr != nil {
		return 0, fmt.Errorf("send buffer: %w", gerr)
	}
	return got - 32, nil
}

// SendLimit is the largest datagram Send can write (see setSendBuffer).
func (q *KernelQueue) SendLimit() int { return q.sendLimit }

// Open opens cfg's NFQUEUE handles (cfg.QueueCount consecutive queues from
// cfg.QueueNum, one netlink socket each, bound and configured) and the raw
// injection sockets, and returns a Dispatcher over them. All sockets belong
// to the network namespace of the calling thread, for their whole life: to
// serve another namespace, call Open on a thread inside it (Run may then run
// anywhere). Needs CAP_NET_ADMIN and CAP_NET_RAW.
func Open(cfg Config) (*Dispatcher, error) {
	if cfg.NewEngine == nil {
		return nil, fmt.Errorf("%w: NewEngine is required", ErrConfig)
	}
	if cfg.Mark == 0 || cfg.PeerMark == 0 {
		return nil, fmt.Errorf("%w: Mark and PeerMark are required", ErrConfig)
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
