//go:build unix

package hostfile

import "syscall"

// nonBlock makes open(2) return at once on a named pipe without a writer.
const nonBlock = syscall.O_NONBLOCK
