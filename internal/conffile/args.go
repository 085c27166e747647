package conffile

import (
	"errors"
	"strings"
)

// ErrUnbalancedQuotes is returned (wrapped) by SplitArgs and by Load/Parse
// when a line has an unterminated quote or a closing quote that is not
// followed by whitespace, the same lines valkey-server refuses to load.
var ErrUnbalancedQuotes = errors.New("unbalanced quotes")

// isSpace reports whether b is whitespace for C isspace() in the C locale.
func isSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

func isHexDigit(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F')
}

func hexDigitToInt(b byte) byte {
	switch {
	case b >= '0' && b <= '9':
		return b - '0'
	case b >= 'a' && b <= 'f':
		return b - 'a' + 10
	case b >= 'A' && b <= 'F':
		return b - 'A' + 10
	}
	return 0
}

// SplitArgs splits one line like Valkey's sdssplitargs: whitespace separates
// arguments; double-quoted arguments support the escapes \n \r \t \b \a \\ \"
// and \xHH (any other escaped character stands for itself); single-quoted
// arguments support only \'. A closing quote must be followed by whitespace
// or the end of the line, else the line is invalid (ErrUnbalancedQuotes).
// Like the C original, the line ends at the first NUL byte. The result is
// never nil for a valid line.
func SplitArgs(line string) ([]string, error) {
	args, _, err := splitArgs(line)
	return args, err
}

// splitArgs is SplitArgs that also returns, for every argument, the offset
// just past its raw text in line (used to keep a directive name as written).
func splitArgs(line string) ([]string, []int, error) {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	n := len(line)
	at := func(i int) byte {
		if i < n {
			return line[i]
		}
		return 0
	}
	args := []string{}
	var ends []int
	p := 0
	for {
		for p < n && isSpace(line[p]) {
			p++
		}
		if p >= n {
			return args, ends, nil
		}
		var cur []byte
		inq, insq, done := false, false, false
		end := 0
		for !done {
			c := at(p)
			switch {
			case inq:
				switch {
				case c == '\\' && at(p+1) == 'x' && isHexDigit(at(p+2)) && isHexDigit(at(p+3)):
					cur = append(cur, hexDigitToInt(at(p+2))*16+hexDigitToInt(at(p+3)))
					p += 3
				case c == '\\' && at(p+1) != 0:
					p++
					e := at(p)
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = '\b'
					case 'a':
						e = '\a'
					}
					cur = append(cur, e)
				case c == '"':
					if nx := at(p + 1); nx != 0 && !isSpace(nx) {
						return nil, nil, ErrUnbalancedQuotes
					}
					done = true
					end = p + 1
				case c == 0:
					return nil, nil, ErrUnbalancedQuotes
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && at(p+1) == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if nx := at(p + 1); nx != 0 && !isSpace(nx) {
						return nil, nil, ErrUnbalancedQuotes
					}
					done = true
					end = p + 1
				case c == 0:
					return nil, nil, ErrUnbalancedQuotes
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
					end = p
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if at(p) != 0 {
				p++
			}
		}
		args = append(args, string(cur))
		ends = append(ends, end)
	}
}

// needsQuoting reports whether s cannot be written as a plain argument.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x20 || b == 0x7f || b == ' ' || b == '"' || b == '\'' || b == '\\' {
			return true
		}
	}
	return false
}

// FormatArgs renders args separated by single spaces so that
// SplitArgs(FormatArgs(args)) equals args. An argument is written plain when
// it is non-empty and has no whitespace, quotes, backslash or control
// characters; otherwise it is double-quoted with the escapes SplitArgs
// understands (\xHH for control characters without a short escape).
func FormatArgs(args []string) string {
	var sb strings.Builder
	for i, a := range args {
		if i > 0 {
			sb.WriteByte(' ')
		}
		if !needsQuoting(a) {
			sb.WriteString(a)
			continue
		}
		sb.WriteByte('"')
		for j := 0; j < len(a); j++ {
			b := a[j]
			switch b {
			case '\\':
				sb.WriteString(`\\`)
			case '"':
				sb.WriteString(`\"`)
			case '\n':
				sb.WriteString(`\n`)
			case '\r':
				sb.WriteString(`\r`)
			case '\t':
				sb.WriteString(`\t`)
			case '\b':
				sb.WriteString(`\b`)
			case '\a':
				sb.WriteString(`\a`)
			default:
				if b < 0x20 || b == 0x7f {
					const hexdigits = "0123456789abcdef"
					sb.WriteString(`\x`)
					sb.WriteByte(hexdigits[b>>4])
					sb.WriteByte(hexdigits[b&0xf])
				} else {
					sb.WriteByte(b)
				}
			}
		}
		sb.WriteByte('"')
	}
	return sb.String()
}

// ASCIILower lowercases ASCII letters only, like C tolower() in the C locale
// (and strcasecmp, sdstolower): "TİMEOUT" with a dotted capital I is not
// "timeout", as strings.ToLower would make it.
func ASCIILower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
