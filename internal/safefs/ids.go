package safefs

import (
	"fmt"
	"os/user"
	"strconv"
)

// IDs resolves the owner and group options of a module (a name or a number)
// to ids; -1 for one not given. Messages name the option.
func IDs(owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner != "" {
		if n, perr := strconv.Atoi(owner); perr == nil {
			uid = n
		} else if u, lerr := user.Lookup(owner); lerr == nil {
			uid, _ = strconv.Atoi(u.Uid)
		} else {
			return 0, 0, fmt.Errorf(`option "owner": no user %q on the target`, owner)
		}
	}
	if group != "" {
		if n, perr := strconv.Atoi(group); perr == nil {
			gid = n
		} else if g, lerr := user.LookupGroup(group); lerr == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			return 0, 0, fmt.Errorf(`option "group": no group %q on the target`, group)
		}
	}
	return uid, gid, nil
}
