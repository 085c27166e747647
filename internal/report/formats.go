package report

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/valkeyops/secure/internal/audit"
)

// Formats are the output formats, by name (--format, formats).
var Formats = []string{"html", "json", "junit", "sarif"}

// Write writes the run in one of Formats.
func Write(w io.Writer, format string, r *Run) error {
	switch format {
	case "html":
		return WriteHTML(w, r)
	case "json":
		return WriteJSON(w, r)
	case "junit":
		return WriteJUnit(w, r)
	case "sarif":
		return WriteSARIF(w, r)
	}
	return fmt.Errorf("format %q is not one of %s", format, strings.Join(Formats, ", "))
}

// WriteJSON writes the run as indented JSON (a later run's previous
// report), markup escaped (\u003c) for tools that paste values into a page.
func WriteJSON(w io.Writer, r *Run) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// JUnit: one test suite per instance, one test case per rule (a finding is
// a failure, a rule that did not apply is skipped); an instance that was
// not audited is one errored case.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the run as JUnit XML.
func WriteJUnit(w io.Writer, r *Run) error {
	all := junitSuites{Name: r.Title}
	for i := range r.Instances {
		in := &r.Instances[i]
		s := junitSuite{Name: in.Label()}
		if in.Report == nil {
			s.Errors++
			s.Cases = append(s.Cases, junitCase{Name: "audit", ClassName: in.Label(), Error: &junitMessage{Message: in.Error}})
		} else {
			for _, f := range in.Report.Findings {
				if f.ID == audit.ConfigCheckID {
					s.Failures++
					s.Cases = append(s.Cases, junitCase{Name: f.ID + " " + f.Message, ClassName: in.Label(),
						Failure: &junitMessage{Message: f.Message, Type: f.Severity, Text: "fix: " + f.Remediation}})
				}
			}
			for j := range r.Rules {
				rule := &r.Rules[j]
				if rule.ID == audit.ConfigCheckID {
					continue
				}
				c := junitCase{Name: rule.ID + " " + rule.Title, ClassName: in.Label()}
				switch cell := r.Cell(in, rule); cell.Status {
				case CellFail, CellAccepted:
					s.Failures++
					c.Failure = &junitMessage{Message: cell.Detail, Type: findingSeverity(in, rule.ID), Text: "fix: " + rule.Remediation}
				case CellNA:
					s.Skipped++
					c.Skipped = &junitMessage{Message: cell.Detail}
				}
				s.Cases = append(s.Cases, c)
			}
		}
		s.Tests = len(s.Cases)
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Skipped += s.Skipped
		all.Suites = append(all.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func findingSeverity(in *Instance, id string) string {
	for _, f := range in.Report.Findings {
		if f.ID == id {
			return f.Severity
		}
	}
	return ""
}

// SARIF 2.1.0: one run of the valkeyops tool; the rules from the baseline
// (and any other a finding names), one result per finding per instance,
// located at the instance's config file and named by host/instance.

// SARIFSchema is the schema the document names.
const SARIFSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      *sarifText        `json:"fullDescription,omitempty"`
	Help                 *sarifText        `json:"help,omitempty"`
	DefaultConfiguration sarifConfig       `json:"defaultConfiguration"`
	Properties           map[string]string `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID     string            `json:"ruleId"`
	RuleIndex  int               `json:"ruleIndex"`
	Level      string            `json:"level"`
	Message    sarifText         `json:"message"`
	Locations  []sarifLocation   `json:"locations"`
	Properties map[string]string `json:"properties"`
}

type sarifLocation struct {
	PhysicalLocation *sarifPhysical  `json:"physicalLocation,omitempty"`
	LogicalLocations []sarifLogical  `json:"logicalLocations"`
	Message          *sarifText      `json:"message,omitempty"`
	Properties       map[string]bool `json:"properties,omitempty"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifLogical struct {
	Name               string `json:"name"`
	FullyQualifiedName string `json:"fullyQualifiedName"`
	Kind               string `json:"kind"`
}

// sarifLevel maps a severity to a SARIF level; securitySeverity to the
// score code-scanning UIs sort by.
var (
	sarifLevel       = map[string]string{"critical": "error", "high": "error", "medium": "warning", "low": "note"}
	securitySeverity = map[string]string{"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
)

// InformationURI is the tool's home named in SARIF.
const InformationURI = "https://github.com/valkeyops/secure"

// WriteSARIF writes the run as SARIF 2.1.0.
func WriteSARIF(w io.Writer, r *Run) error {
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{Name: "valkeyops", Version: r.Version, InformationURI: InformationURI, Rules: []sarifRule{}}},
		Results: []sarifResult{}}
	index := map[string]int{}
	for _, rule := range r.Rules {
		index[rule.ID] = len(run.Tool.Driver.Rules)
		sr := sarifRule{ID: rule.ID, Name: rule.ID, ShortDescription: sarifText{rule.Title},
			DefaultConfiguration: sarifConfig{Level: sarifLevel[rule.Severity]},
			Properties:           map[string]string{"security-severity": securitySeverity[rule.Severity], "severity": rule.Severity}}
		if sr.DefaultConfiguration.Level == "" {
			sr.DefaultConfiguration.Level = "warning"
		}
		if rule.Rationale != "" {
			sr.FullDescription = &sarifText{rule.Rationale}
		}
		if rule.Remediation != "" {
			sr.Help = &sarifText{rule.Remediation}
		}
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sr)
	}
	for i := range r.Instances {
		in := &r.Instances[i]
		if in.Report == nil {
			continue
		}
		loc := sarifLocation{LogicalLocations: []sarifLogical{{Name: in.Instance, FullyQualifiedName: in.Label(), Kind: "resource"}}}
		if p := in.Report.ConfigFile; p != "" {
			loc.PhysicalLocation = &sarifPhysical{ArtifactLocation: sarifArtifact{URI: fileURI(p)}}
		}
		for _, f := range in.Report.Findings {
			res := sarifResult{RuleID: f.ID, RuleIndex: index[f.ID], Level: sarifLevel[f.Severity],
				Message:    sarifText{in.Label() + ": " + f.Message},
				Locations:  []sarifLocation{loc},
				Properties: map[string]string{"severity": f.Severity, "host": in.Host, "instance": in.Instance}}
			if r.accepted(f) {
				res.Properties["accepted_risk"] = "true"
			}
			run.Results = append(run.Results, res)
		}
	}
	// Markup stays escaped (\u003c) for viewers that paste messages into
	// a page.
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{Schema: SARIFSchema, Version: "2.1.0", Runs: []sarifRun{run}})
}

// fileURI turns a path into a SARIF artifact URI: relative paths stay
// relative (a repository's file, for code scanning), absolute ones are
// file:// URIs.
func fileURI(p string) string {
	u := url.URL{Path: p}
	if strings.HasPrefix(p, "/") {
		u.Scheme = "file"
	}
	return u.String()
}
