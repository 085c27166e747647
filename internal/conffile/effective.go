package conffile

// Effective returns the arguments the server takes for a setting named by
// names (aliases of one setting): the last occurrence's arguments, or, for
// an accumulating setting (save), every occurrence's arguments in reading
// order. last is the occurrence that decides (for messages); ok is false
// when the file does not set it.
func (c *Config) Effective(accumulate bool, names ...string) (args []string, last Occurrence, ok bool) {
	occ := c.Occurrences(names...)
	if len(occ) == 0 {
		return nil, Occurrence{}, false
	}
	last = occ[len(occ)-1]
	if !accumulate {
		return last.Args, last, true
	}
	for _, o := range occ {
		args = append(args, o.Args...)
	}
	return args, last, true
}
