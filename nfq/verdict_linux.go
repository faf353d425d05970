package nfq

import "golang.org/x/sys/unix"

// send writes the batch in one sendmsg and empties it.
func (b *batch) send() error {
	if b.n == 0 {
		return nil
	}
	var serr error
	err := b.rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgBuffers(int(fd), b.iov, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return serr != unix.EAGAIN
	})
	b.reset()
	if err != nil {
		return err
	}
	return serr
}
