package appliance

import "golang.org/x/sys/unix"

const nonBlock = unix.O_NONBLOCK
