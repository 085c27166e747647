// Package policy is the secure baseline as data: rules with an id, a
// severity, a rationale, a remediation and a check, loaded from YAML (the
// baseline embedded in the binary, then the user's files, which add rules or
// override them by id), validated before anything runs, and evaluated
// against Facts gathered from a server, its files and its host.
//
// Every problem with a policy is one sentence naming the file, the line and,
// when it is known, the rule id.
package policy

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/valkeyops/secure/internal/safefs"
)

// BaselineYAML is the secure baseline shipped with the collection (a copy
// lives in files/policy/baseline.yml; a test keeps the two identical).
//
//go:embed baseline.yml
var BaselineYAML []byte

// BaselineName is how the embedded baseline is named in messages.
const BaselineName = "baseline.yml"

// Severities, lowest first.
var Severities = []string{"low", "medium", "high", "critical"}

// SeverityRank orders severities (low=1 … critical=4); 0 for an unknown one.
func SeverityRank(s string) int { return slices.Index(Severities, s) + 1 }

var idRe = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9]{3,}$`)

// Rule is one check of the policy.
type Rule struct {
	ID          string `yaml:"id" json:"id"`
	Title       string `yaml:"title" json:"title"`
	Severity    string `yaml:"severity" json:"severity"`
	Rationale   string `yaml:"rationale" json:"rationale,omitempty"`
	Remediation string `yaml:"remediation" json:"remediation,omitempty"`
	// Reference is where the advice comes from (yaml "source"): a Valkey
	// doc or a public hardening guide, as a URL.
	Reference string `yaml:"source" json:"source,omitempty"`
	// Enabled false turns a rule off (an override may do just that).
	Enabled *bool `yaml:"enabled" json:"-"`
	// When, if given, must hold for the rule to apply; otherwise the rule
	// is skipped as not applicable.
	When *Predicate `yaml:"when" json:"-"`
	// Check must hold, else the rule yields a finding.
	Check *Predicate `yaml:"check" json:"-"`
	// Targets are what the rule is about: server (a data node, the
	// default) and/or sentinel. A rule not for the audited kind is skipped.
	Targets []string `yaml:"targets" json:"-"`

	// Where the rule (last) came from, for messages.
	Source string `yaml:"-" json:"-"`
	Line   int    `yaml:"-" json:"-"`
}

// What a rule may be about (Rule.Targets).
const (
	TargetServer   = "server"
	TargetSentinel = "sentinel"
)

// Targets are the accepted targets.
var Targets = []string{TargetServer, TargetSentinel}

// AppliesTo reports whether the rule is about this kind of target.
func (r *Rule) AppliesTo(kind string) bool {
	if r.Targets == nil {
		return kind == TargetServer
	}
	return slices.Contains(r.Targets, kind)
}

// IsEnabled reports whether the rule runs.
func (r *Rule) IsEnabled() bool { return r.Enabled == nil || *r.Enabled }

// Policy is a validated, merged set of rules.
type Policy struct {
	// Admins are the ACL users allowed broad rights (all commands, all
	// keys, dangerous commands).
	Admins []string
	// Owners are the accepted owners of the server's files.
	Owners []string
	// Defaults are the server's defaults, used when a file does not set a
	// directive and no running server says otherwise.
	Defaults map[string]any
	Rules    []*Rule
}

// document is the top level of a policy file.
type document struct {
	Version  int            `yaml:"version"`
	Admins   []string       `yaml:"admins"`
	Owners   []string       `yaml:"owners"`
	Defaults map[string]any `yaml:"defaults"`
	Rules    []ast.Node     `yaml:"rules"`
}

// Error is a problem with a policy file: file, line, rule id and what is wrong.
type Error struct {
	File string
	Line int
	Rule string
	Msg  string
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Rule != "" {
		return fmt.Sprintf("invalid policy %s: rule %s: %s", where, e.Rule, e.Msg)
	}
	return fmt.Sprintf("invalid policy %s: %s", where, e.Msg)
}

// Load returns the baseline (unless noBaseline) merged with each file in
// order. Files are read from the local disk.
func Load(noBaseline bool, files ...string) (*Policy, error) {
	var srcs []Source
	for _, f := range files {
		data, err := safefs.ReadFile(f, MaxPolicySize)
		if err != nil {
			return nil, fmt.Errorf("failed to read policy %s: %w", f, unwrapPath(err))
		}
		srcs = append(srcs, Source{Name: f, Data: data})
	}
	return Build(noBaseline, srcs...)
}

// Source is one policy document and the name used for it in messages.
type Source struct {
	Name string
	Data []byte
}

// Build is Load for documents already in memory.
func Build(noBaseline bool, srcs ...Source) (*Policy, error) {
	p := &Policy{Defaults: map[string]any{}}
	if !noBaseline {
		srcs = append([]Source{{Name: BaselineName, Data: BaselineYAML}}, srcs...)
	}
	if err := p.Add(srcs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Add merges more documents into the policy and validates the result. On
// error the policy must not be used.
func (p *Policy) Add(srcs ...Source) error {
	for _, s := range srcs {
		if err := p.merge(s); err != nil {
			return err
		}
	}
	for _, r := range p.Rules {
		if err := p.validateRule(r); err != nil {
			return err
		}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// yamlError turns a go-yaml error into an Error with the line it names.
func yamlError(file, rule string, err error) *Error {
	var ye yaml.Error
	if errors.As(err, &ye) {
		line := 0
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			line = tok.Position.Line
		}
		return &Error{File: file, Line: line, Rule: rule, Msg: ye.GetMessage()}
	}
	return &Error{File: file, Rule: rule, Msg: err.Error()}
}

func (p *Policy) merge(src Source) error {
	if len(src.Data) > MaxPolicySize {
		return &Error{File: src.Name, Msg: fmt.Sprintf("the file is larger than %s", safefs.Size(MaxPolicySize))}
	}
	f, err := parser.ParseBytes(src.Data, 0)
	if err != nil {
		return yamlError(src.Name, "", err)
	}
	if len(f.Docs) != 1 || f.Docs[0].Body == nil {
		return &Error{File: src.Name, Line: 1, Msg: "expected one YAML document with a rules list"}
	}
	body := f.Docs[0].Body
	if err := checkExpansion(src.Name, body); err != nil {
		return err
	}
	if _, ok := body.(*ast.MappingNode); !ok {
		if _, ok := body.(*ast.MappingValueNode); !ok {
			return &Error{File: src.Name, Line: line(body), Msg: "expected a mapping with version, rules and optional admins, owners, defaults"}
		}
	}
	var doc document
	if err := yaml.NodeToValue(body, &doc, yaml.Strict()); err != nil {
		return yamlError(src.Name, "", err)
	}
	if doc.Version != 1 {
		return &Error{File: src.Name, Line: keyLine(body, "version"), Msg: fmt.Sprintf("version must be 1 (got %d)", doc.Version)}
	}
	if doc.Admins != nil {
		p.Admins = doc.Admins
	}
	if doc.Owners != nil {
		p.Owners = doc.Owners
	}
	for k, v := range doc.Defaults {
		p.Defaults[strings.ToLower(k)] = v
	}
	for _, n := range doc.Rules {
		var r Rule
		id := ruleID(n)
		if err := yaml.NodeToValue(n, &r, yaml.Strict()); err != nil {
			return yamlError(src.Name, id, err)
		}
		r.Source, r.Line = src.Name, line(n)
		if !idRe.MatchString(r.ID) {
			return &Error{File: src.Name, Line: r.Line, Rule: quoteID(r.ID), Msg: "id must look like VK-001 (capital letters, a dash, at least three digits)"}
		}
		if err := p.validateParts(&r, n); err != nil {
			return err
		}
		if i := slices.IndexFunc(p.Rules, func(o *Rule) bool { return o.ID == r.ID }); i >= 0 {
			if p.Rules[i].Source == src.Name {
				return &Error{File: src.Name, Line: r.Line, Rule: r.ID, Msg: fmt.Sprintf("duplicate id (first defined at line %d)", p.Rules[i].Line)}
			}
			overlay(p.Rules[i], &r)
			continue
		}
		p.Rules = append(p.Rules, &r)
	}
	sort.SliceStable(p.Rules, func(i, j int) bool { return p.Rules[i].ID < p.Rules[j].ID })
	return nil
}

func quoteID(id string) string {
	if id == "" {
		return "(no id)"
	}
	return fmt.Sprintf("%q", id)
}

// overlay applies an override: every field it gives replaces the rule's.
func overlay(dst, o *Rule) {
	if o.Title != "" {
		dst.Title = o.Title
	}
	if o.Severity != "" {
		dst.Severity = o.Severity
	}
	if o.Rationale != "" {
		dst.Rationale = o.Rationale
	}
	if o.Remediation != "" {
		dst.Remediation = o.Remediation
	}
	if o.Reference != "" {
		dst.Reference = o.Reference
	}
	if o.Enabled != nil {
		dst.Enabled = o.Enabled
	}
	if o.When != nil {
		dst.When = o.When
	}
	if o.Check != nil {
		dst.Check = o.Check
	}
	if o.Targets != nil {
		dst.Targets = o.Targets
	}
	dst.Source, dst.Line = o.Source, o.Line
}

func line(n ast.Node) int {
	if n == nil || n.GetToken() == nil || n.GetToken().Position == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// keyLine finds the line of key inside a mapping node (0 when absent).
func keyLine(n ast.Node, key string) int {
	path, err := yaml.PathString("$." + key)
	if err != nil {
		return line(n)
	}
	found, err := path.FilterNode(n)
	if err != nil || found == nil {
		return line(n)
	}
	return line(found)
}

// ruleID reads the id of a rule node before decoding it, for messages.
func ruleID(n ast.Node) string {
	path, _ := yaml.PathString("$.id")
	if found, err := path.FilterNode(n); err == nil && found != nil {
		if s, ok := found.(*ast.StringNode); ok {
			return s.Value
		}
		return strings.TrimSpace(found.String())
	}
	return ""
}

// Get returns the rule with the id, or nil.
func (p *Policy) Get(id string) *Rule {
	for _, r := range p.Rules {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// validateParts checks what a rule document gives, each part with the line
// of its own key, before it is merged.
func (p *Policy) validateParts(r *Rule, n ast.Node) error {
	fail := func(key, format string, a ...any) error {
		return &Error{File: r.Source, Line: keyLine(n, key), Rule: r.ID, Msg: fmt.Sprintf(format, a...)}
	}
	if r.Severity != "" && SeverityRank(r.Severity) == 0 {
		return fail("severity", "severity %q is not one of %s", r.Severity, strings.Join(Severities, ", "))
	}
	for _, t := range r.Targets {
		if !contains(Targets, t) {
			return fail("targets", "targets: %q is not one of %s", t, strings.Join(Targets, ", "))
		}
	}
	if r.Targets != nil && len(r.Targets) == 0 {
		return fail("targets", "targets: give server, sentinel or both")
	}
	if r.Check != nil {
		if err := r.Check.validate(p); err != nil {
			return fail("check", "check: %v", err)
		}
	}
	if r.When != nil {
		if err := r.When.validate(p); err != nil {
			return fail("when", "when: %v", err)
		}
	}
	return nil
}

// validateRule checks that a merged rule is complete.
func (p *Policy) validateRule(r *Rule) error {
	fail := func(format string, a ...any) error {
		return &Error{File: r.Source, Line: r.Line, Rule: r.ID, Msg: fmt.Sprintf(format, a...)}
	}
	switch {
	case strings.TrimSpace(r.Title) == "":
		return fail("title is required")
	case r.Severity == "":
		return fail("severity is required (one of %s)", strings.Join(Severities, ", "))
	case strings.TrimSpace(r.Remediation) == "":
		return fail("remediation is required")
	case r.Check == nil:
		return fail("check is required")
	}
	return nil
}
