//go:build !unix

package hostfile

// nonBlock is 0 where open has no such flag: Windows has no FIFOs on its file systems, and the mode
// check still refuses anything else than a regular file.
const nonBlock = 0
