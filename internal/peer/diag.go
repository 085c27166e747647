package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockDiag asks the kernel (NETLINK_SOCK_DIAG, one exact lookup by the
// four addresses) for the TCP socket whose local end is local and remote
// end remote: its state, owner uid and inode. It costs one round trip to
// the kernel whatever the number of sockets, where /proc/net/tcp lists
// every socket of the host. found is false when the kernel has no such
// socket.
func sockDiag(local, remote *net.TCPAddr) (e sockEntry, found bool, err error) {
	family, src, dst := unix.AF_INET, local.IP.To4(), remote.IP.To4()
	if src == nil || dst == nil {
		family, src, dst = unix.AF_INET6, local.IP.To16(), remote.IP.To16()
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return e, false, err
	}
	defer unix.Close(fd)

	const hdrLen, reqLen = 16, 56
	req := make([]byte, hdrLen+reqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1) // sequence
	r := req[hdrLen:]
	r[0], r[1] = byte(family), unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], uint16(local.Port))
	binary.BigEndian.PutUint16(id[2:], uint16(remote.Port))
	copy(id[4:20], src)
	copy(id[20:36], dst)
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return e, false, err
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return e, false, err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil || len(msgs) == 0 {
		return e, false, fmt.Errorf("malformed sock_diag reply: %v", err)
	}
	m := msgs[0]
	switch m.Header.Type {
	case unix.NLMSG_ERROR:
		if len(m.Data) < 4 {
			return e, false, errors.New("malformed sock_diag error")
		}
		errno := unix.Errno(-int32(ne.Uint32(m.Data)))
		if errno == unix.ENOENT {
			return e, false, nil
		}
		return e, false, errno
	case unix.SOCK_DIAG_BY_FAMILY:
	default:
		return e, false, fmt.Errorf("unexpected sock_diag reply type %d", m.Header.Type)
	}
	d := m.Data
	if len(d) < 72 {
		return e, false, errors.New("short sock_diag reply")
	}
	e.state = fmt.Sprintf("%02X", d[1])
	e.uid = int(ne.Uint32(d[64:]))
	e.inode = uint64(ne.Uint32(d[68:]))
	return e, true, nil
}
