package conffile

import "strings"

// Line is one line as valkey-server reads it, with the file and the
// (1-based) line of that file its first byte comes from.
type Line struct {
	Text   string
	File   string
	Number int
}

// ReadLikeServer splits content into the lines valkey-server reads from it:
// the config file and the aclfile are both read with fgets and sdscat (see
// serverText). nuls lists the file lines that hold a NUL byte.
func ReadLikeServer(content []byte) (lines []Line, nuls []int) {
	lines, nulsOf := serverLines([]source{{content: string(content)}})
	return lines, nulsOf[""]
}

// fgetsSize is the buffer valkey-server reads its config file with:
// fgets(buf, CONFIG_READ_LEN+1, fp) reads at most 1024 bytes, or up to and
// including a line break.
const fgetsSize = 1024

// serverText is the text valkey-server builds from a file (config.c,
// loadServerConfig): chunks of fgets, each appended with sdscat, which stops
// at the chunk's first NUL byte, so the rest of that chunk, its line break
// included, is dropped and the next line joins the line the NUL was on.
// lineAt gives for every byte of text the file line it comes from; nuls
// lists the lines holding a NUL. Without a NUL byte text is content.
func serverText(content string) (text string, lineAt []int, nuls []int) {
	var b strings.Builder
	line := 1 // the line content[p] is on: a chunk never spans two
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
		b.WriteString(chunk)
		for range len(chunk) {
			lineAt = append(lineAt, line)
		}
		if content[end-1] == '\n' {
			line++
		}
		p = end
	}
	return b.String(), lineAt, nuls
}

// source is one file's content.
type source struct{ path, content string }

// serverLines reads files as the server reads one include: the text of each
// (serverText) concatenated, then split at line breaks. An include whose
// glob matches several files is read that way, so a file that does not end
// with a line break joins its last line to the next file's first line.
// nuls gives, per file, the lines holding a NUL byte.
func serverLines(files []source) (lines []Line, nuls map[string][]int) {
	type origin struct {
		file string
		line int
	}
	var text strings.Builder
	var at []origin
	nuls = map[string][]int{}
	for _, f := range files {
		t, lineAt, n := serverText(f.content)
		text.WriteString(t)
		for _, l := range lineAt {
			at = append(at, origin{f.path, l})
		}
		if len(n) > 0 {
			nuls[f.path] = n
		}
	}
	t := text.String()
	for start := 0; start < len(t); {
		end := strings.IndexByte(t[start:], '\n')
		if end < 0 {
			end = len(t)
		} else {
			end += start
		}
		lines = append(lines, Line{Text: t[start:end], File: at[start].file, Number: at[start].line})
		start = end + 1
	}
	return lines, nuls
}
