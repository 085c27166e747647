package policy

import (
	"fmt"

	"github.com/goccy/go-yaml/ast"
)

// Bounds on a policy file: a policy is a few hundred lines, so a huge file
// or YAML aliases that expand exponentially ("billion laughs": each anchor
// a list of the previous one, ten times over) are an error before any
// value is built, never an out-of-memory crash or exponential time.
const (
	MaxPolicySize  = 4 << 20 // bytes of one policy file
	MaxPolicyNodes = 100000  // YAML nodes after expanding aliases
)

// checkExpansion counts the nodes of a document as the decoder would see
// them, with every alias replaced by its anchor's value.
func checkExpansion(file string, doc ast.Node) error {
	e := expander{anchors: map[string]int64{}}
	if n := e.size(doc); n > MaxPolicyNodes {
		at := e.at
		if at == 0 {
			at = line(doc)
		}
		return &Error{File: file, Line: at, Msg: fmt.Sprintf("YAML aliases expand to more than %d values; write the policy without nested aliases", MaxPolicyNodes)}
	}
	return nil
}

// expander remembers each anchor's size and the line of the first alias
// that stands for too many values.
type expander struct {
	anchors map[string]int64
	at      int
}

// size saturates at MaxPolicyNodes+1, so it never overflows and stops
// growing as soon as the answer is known.
func (e *expander) size(n ast.Node) int64 {
	const limit = MaxPolicyNodes + 1
	add := func(a, b int64) int64 { return min(a+b, limit) }
	switch v := n.(type) {
	case nil:
		return 0
	case *ast.DocumentNode:
		return e.size(v.Body)
	case *ast.AnchorNode:
		s := e.size(v.Value)
		if v.Name != nil {
			e.anchors[v.Name.GetToken().Value] = s
		}
		return s
	case *ast.AliasNode:
		if v.Value != nil {
			if s, ok := e.anchors[v.Value.GetToken().Value]; ok {
				if s > MaxPolicyNodes/10 && e.at == 0 {
					e.at = line(v)
				}
				return s
			}
		}
		return 1
	case *ast.TagNode:
		return add(1, e.size(v.Value))
	case *ast.MappingKeyNode:
		return add(1, e.size(v.Value))
	case *ast.MappingValueNode:
		return add(e.size(v.Key), e.size(v.Value))
	case *ast.MappingNode:
		s := int64(1)
		for _, mv := range v.Values {
			s = add(s, e.size(mv))
		}
		return s
	case *ast.SequenceNode:
		s := int64(1)
		for _, item := range v.Values {
			s = add(s, e.size(item))
		}
		return s
	}
	return 1
}
