package conn

import (
	"bytes"
	"fmt"
	"net"
	"strconv"

	"github.com/valkeyops/secure/internal/safefs"
)

// Bounds on what a server may send in one reply. valkey-go allocates what
// a length header announces before reading it, so `$999999999999` from a
// peer would be an out-of-memory crash; the guard refuses such a header
// before valkey-go sees it. Our replies are small: CONFIG GET * is about
// 20 KB, ACL LIST a few KB per user.
const (
	MaxReplyString   = 64 << 20  // one string (bulk, verbatim, error)
	MaxReplyElements = 1 << 20   // elements of one aggregate
	MaxReplyBytes    = 256 << 20 // one whole reply
	MaxReplyDepth    = 64        // nesting of aggregates
	maxReplyLine     = 1 << 20   // a simple string or error line
)

// guardConn checks every byte the server sends against the bounds.
type guardConn struct {
	net.Conn
	g respGuard
}

func (c *guardConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if gerr := c.g.feed(b[:n]); gerr != nil {
			_ = c.Conn.Close()
			return 0, gerr
		}
	}
	return n, err
}

// frame is an aggregate being read: how many elements are left.
type frame struct {
	left      int64 // -1: streamed, ends with "."
	attribute bool  // an attribute does not count as an element of its parent
}

// respGuard follows the RESP2/RESP3 framing of the stream.
type respGuard struct {
	inLine bool
	typ    byte
	line   []byte
	skip   int64 // body bytes (with CRLF) still to pass
	stack  []frame
	total  int64 // bytes of the current top-level reply
}

func (g *respGuard) feed(b []byte) error {
	for len(b) > 0 {
		if g.skip > 0 {
			n := min(int64(len(b)), g.skip)
			g.skip -= n
			b = b[n:]
			if err := g.count(n); err != nil {
				return err
			}
			if g.skip == 0 {
				g.done(false)
			}
			continue
		}
		if !g.inLine {
			g.typ, g.inLine, g.line = b[0], true, g.line[:0]
			b = b[1:]
			if err := g.count(1); err != nil {
				return err
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		take := len(b)
		if i >= 0 {
			take = i + 1
		}
		g.line = append(g.line, b[:take]...)
		b = b[take:]
		if err := g.count(int64(take)); err != nil {
			return err
		}
		if len(g.line) > maxReplyLine {
			return fmt.Errorf("the server sent a reply line longer than %s; refusing it", safefs.Size(maxReplyLine))
		}
		if i >= 0 {
			g.inLine = false
			if err := g.header(string(bytes.TrimRight(g.line, "\r\n"))); err != nil {
				return err
			}
		}
	}
	return nil
}

func (g *respGuard) count(n int64) error {
	g.total += n
	if g.total > MaxReplyBytes {
		return fmt.Errorf("the server sent a reply larger than %s; refusing it", safefs.Size(MaxReplyBytes))
	}
	return nil
}

func (g *respGuard) header(s string) error {
	switch g.typ {
	case '$', '!', '=', ';':
		if s == "?" {
			g.stack = append(g.stack, frame{left: -1})
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("the server sent a malformed length %q; refusing the reply", s)
		}
		if n > MaxReplyString {
			return fmt.Errorf("the server announced a string of %d bytes, more than the limit of %s; refusing the reply", n, safefs.Size(MaxReplyString))
		}
		if g.typ == ';' && n == 0 {
			g.end() // the last chunk of a streamed string
			return nil
		}
		if n < 0 {
			g.done(false)
			return nil
		}
		g.skip = n + 2
		return nil
	case '*', '%', '~', '>', '|':
		if s == "?" {
			return g.push(frame{left: -1, attribute: g.typ == '|'})
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("the server sent a malformed length %q; refusing the reply", s)
		}
		if n > MaxReplyElements {
			return fmt.Errorf("the server announced %d elements, more than the limit of %d; refusing the reply", n, MaxReplyElements)
		}
		if n <= 0 {
			g.done(false)
			return nil
		}
		if g.typ == '%' || g.typ == '|' {
			n *= 2
		}
		return g.push(frame{left: n, attribute: g.typ == '|'})
	case '.':
		g.end() // the end of a streamed aggregate
		return nil
	}
	g.done(false) // a one-line value
	return nil
}

// end closes a streamed value (or is a value of its own outside one).
func (g *respGuard) end() {
	if n := len(g.stack); n > 0 && g.stack[n-1].left == -1 {
		top := g.stack[n-1]
		g.stack = g.stack[:n-1]
		g.done(top.attribute)
		return
	}
	g.done(false)
}

func (g *respGuard) push(f frame) error {
	if len(g.stack) >= MaxReplyDepth {
		return fmt.Errorf("the server sent aggregates nested deeper than %d; refusing the reply", MaxReplyDepth)
	}
	g.stack = append(g.stack, f)
	return nil
}

// done records that one value is complete, closing the aggregates it
// completes; a complete top-level value resets the reply's byte count.
func (g *respGuard) done(attribute bool) {
	for {
		if len(g.stack) == 0 {
			if !attribute {
				g.total = 0
			}
			return
		}
		top := &g.stack[len(g.stack)-1]
		if top.left == -1 || attribute {
			return
		}
		top.left--
		if top.left > 0 {
			return
		}
		attribute = top.attribute
		g.stack = g.stack[:len(g.stack)-1]
	}
}
