package conffile

import "strings"

// Line is one line as valkey-server reads a file, with the (1-based) line
// of the file its first byte comes from.
type Line struct {
	Text   string
	Number int
}

// ReadLikeServer splits content into the lines valkey-server reads from it:
// the config file and the aclfile are both read with fgets and sdscat.
// nuls lists the file lines that hold a NUL byte.
func ReadLikeServer(content []byte) (lines []Line, nuls []int) {
	return serverLines(string(content))
}

// fgetsSize is the buffer valkey-server reads its config file with:
// fgets(buf, CONFIG_READ_LEN+1, fp) reads at most 1024 bytes, or up to and
// including a line break.
const fgetsSize = 1024

// serverLines reads file content exactly as valkey-server does (config.c,
// loadServerConfig): chunks of fgets, each appended with sdscat, which stops
// at the chunk's first NUL byte, so the rest of that chunk, its line break
// included, is dropped and the next line joins the line the NUL was on. The
// text is then split at line breaks. nuls lists the lines holding a NUL.
//
// Without a NUL byte the logical lines are the file's lines.
func serverLines(content string) (lines []Line, nuls []int) {
	var text strings.Builder
	var lineAt []int // lineAt[i]: the file line text byte i comes from
	line := 1        // the line content[p] is on: a chunk never spans two
	for p := 0; p < len(content); {
		end := min(p+fgetsSize, len(content))
		if i := strings.IndexByte(content[p:end], '\n'); i >= 0 {
			end = p + i + 1
		}
		chunk := content[p:end]
		if z := strings.IndexByte(chunk, 0); z >= 0 {
			chunk = chunk[:z]
			if len(nuls) == 0 || nuls[len(nuls)-1] != line {
				nuls = append(nuls, line)
			}
		}
		text.WriteString(chunk)
		for range len(chunk) {
			lineAt = append(lineAt, line)
		}
		if content[end-1] == '\n' {
			line++
		}
		p = end
	}
	t := text.String()
	for start := 0; start < len(t); {
		end := strings.IndexByte(t[start:], '\n')
		if end < 0 {
			end = len(t)
		} else {
			end += start
		}
		lines = append(lines, Line{Text: t[start:end], Number: lineAt[start]})
		start = end + 1
	}
	return lines, nuls
}
