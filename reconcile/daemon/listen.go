package daemon

import (
	"net"
	"net/http"
	"sync"
)

// fairListener bounds the connections served at once, like netutil.LimitListener, but does not let
// idle keep-alive connections hold the slots: when every slot is taken and a client connects, the
// connection that has been idle the longest (between two requests) is closed to make room, as net/http
// closes idle connections on shutdown. Only when no connection is idle does the newcomer wait, for one
// to end or to turn idle. Connections that are mid-request are bounded by the server's timeouts.
//
// It learns which connections are idle from the server's ConnState hook (track).
type fairListener struct {
	net.Listener
	slots chan struct{}
	// wake is poked when a connection turns idle, so that a waiting Accept can close it.
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	closed  bool
	idle    map[*fairConn]uint64 // idle connections, by the order in which they turned idle
	counter uint64
}

func newFairListener(ln net.Listener, max int) *fairListener {
	return &fairListener{Listener: ln, slots: make(chan struct{}, max), wake: make(chan struct{}, 1),
		done: make(chan struct{}), idle: map[*fairConn]uint64{}}
}

// Accept accepts a connection, then waits for a slot, closing the longest-idle connection when all are
// taken.
func (l *fairListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return &fairConn{Conn: c, l: l}, nil
		default:
		}
		if l.closeLongestIdle() {
			continue // its slot comes back as it closes
		}
		select {
		case l.slots <- struct{}{}:
			return &fairConn{Conn: c, l: l}, nil
		case <-l.wake:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// Close stops accepting and releases a waiting Accept.
func (l *fairListener) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// track follows the state of the server's connections; the server's ConnState hook calls it.
func (l *fairListener) track(c net.Conn, state http.ConnState) {
	fc, ok := c.(*fairConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if state == http.StateIdle {
		l.counter++
		l.idle[fc] = l.counter
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return
	}
	delete(l.idle, fc)
}

// closeLongestIdle closes the connection idle the longest, and reports whether there was one.
func (l *fairListener) closeLongestIdle() bool {
	l.mu.Lock()
	var oldest *fairConn
	for c, n := range l.idle {
		if oldest == nil || n < l.idle[oldest] {
			oldest = c
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest == nil {
		return false
	}
	oldest.Close()
	return true
}

// fairConn gives its slot back when closed, once.
type fairConn struct {
	net.Conn
	l    *fairListener
	once sync.Once
}

func (c *fairConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return err
}

// idleConns is the number of idle keep-alive connections.
func (l *fairListener) idleConns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.idle)
}
