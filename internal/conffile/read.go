package conffile

import "strings"

// fgetsSize is the buffer valkey-server reads its config file with:
// fgets(buf, CONFIG_READ_LEN+1, fp) reads at most 1024 bytes, or up to and
// including a line break.
const fgetsSize = 1024

// logicalLine is one line as the server splits its config text, with the
// (1-based) line of the file its first byte comes from.
type logicalLine struct {
	text string
	line int
}

// serverLines reads file content exactly as valkey-server does (config.c,
// loadServerConfig): chunks of fgets, each appended with sdscat, which stops
// at the chunk's first NUL byte, so the rest of that chunk, its line break
// included, is dropped and the next line joins the line the NUL was on. The
// text is then split at line breaks. nuls lists the lines holding a NUL.
//
// Without a NUL byte the logical lines are the file's lines.
func serverLines(content string) (lines []logicalLine, nuls []int) {
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
		lines = append(lines, logicalLine{text: t[start:end], line: lineAt[start]})
		start = end + 1
	}
	return lines, nuls
}
