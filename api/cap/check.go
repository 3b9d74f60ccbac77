package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// Check validates a CAP 1.2 document against the content model of the OASIS CAP 1.2 schema (CAP-v1.2.xsd):
// element order and occurrences, the enumerations, the dateTime pattern, and the forms of polygon, circle,
// identifier and sender. It is the check a publisher makes before sending; the tests also run the official
// XSD where it is available (docs/cap.md).
func Check(doc []byte) error {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	root, err := readTree(dec)
	if err != nil {
		return err
	}
	if root.name.Space != Namespace || root.name.Local != "alert" {
		return fmt.Errorf("root is {%s}%s, want {%s}alert", root.name.Space, root.name.Local, Namespace)
	}
	return checkSeq(root, alertModel)
}

type node struct {
	name     xml.Name
	text     string
	children []*node
}

func readTree(dec *xml.Decoder) (*node, error) {
	var stack []*node
	var root *node
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("cannot parse CAP XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 8 {
				return nil, errors.New("CAP XML nests too deep")
			}
			n := &node{name: t.Name}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("CAP XML has no root element")
	}
	return root, nil
}

// field is one element of a sequence: name, occurrences, and a check of its text or its own model.
type field struct {
	name     string
	min, max int // max -1: unbounded
	text     func(string) error
	model    []field
}

var (
	dateTimeRE = regexp.MustCompile(`^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$`)
	pointRE    = `-?\d+(\.\d+)?,-?\d+(\.\d+)?`
	polygonRE  = regexp.MustCompile(`^(` + pointRE + ` ){3,}` + pointRE + `$`)
	circleRE   = regexp.MustCompile(`^` + pointRE + ` \d+(\.\d+)?$`)
)

func enum(vals ...string) func(string) error {
	return func(s string) error {
		if !slices.Contains(vals, s) {
			return fmt.Errorf("%q is not one of %s", s, strings.Join(vals, ", "))
		}
		return nil
	}
}

func dateTime(s string) error {
	if !dateTimeRE.MatchString(s) {
		return fmt.Errorf("%q is not a CAP dateTime (YYYY-MM-DDThh:mm:ss±hh:mm)", s)
	}
	return nil
}

func noSpaceComma(s string) error {
	if s == "" || strings.ContainsAny(s, " ,<&") {
		return fmt.Errorf("%q must be non-empty without spaces, commas, < or &", s)
	}
	return nil
}

func anyText(string) error { return nil }

var valuePair = []field{{name: "valueName", min: 1, max: 1, text: anyText}, {name: "value", min: 1, max: 1, text: anyText}}

var alertModel = []field{
	{name: "identifier", min: 1, max: 1, text: noSpaceComma},
	{name: "sender", min: 1, max: 1, text: noSpaceComma},
	{name: "sent", min: 1, max: 1, text: dateTime},
	{name: "status", min: 1, max: 1, text: enum("Actual", "Exercise", "System", "Test", "Draft")},
	{name: "msgType", min: 1, max: 1, text: enum("Alert", "Update", "Cancel", "Ack", "Error")},
	{name: "source", max: 1, text: anyText},
	{name: "scope", min: 1, max: 1, text: enum("Public", "Restricted", "Private")},
	{name: "restriction", max: 1, text: anyText},
	{name: "addresses", max: 1, text: anyText},
	{name: "code", max: -1, text: anyText},
	{name: "note", max: 1, text: anyText},
	{name: "references", max: 1, text: func(s string) error {
		for _, r := range strings.Fields(s) {
			if p := strings.Split(r, ","); len(p) != 3 || dateTime(p[2]) != nil {
				return fmt.Errorf("reference %q is not sender,identifier,sent", r)
			}
		}
		return nil
	}},
	{name: "incidents", max: 1, text: anyText},
	{name: "info", max: -1, model: []field{
		{name: "language", max: 1, text: anyText},
		{name: "category", min: 1, max: -1, text: enum("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra", "CBRNE", "Other")},
		{name: "event", min: 1, max: 1, text: anyText},
		{name: "responseType", max: -1, text: enum("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None")},
		{name: "urgency", min: 1, max: 1, text: enum("Immediate", "Expected", "Future", "Past", "Unknown")},
		{name: "severity", min: 1, max: 1, text: enum("Extreme", "Severe", "Moderate", "Minor", "Unknown")},
		{name: "certainty", min: 1, max: 1, text: enum("Observed", "Likely", "Possible", "Unlikely", "Unknown")},
		{name: "audience", max: 1, text: anyText},
		{name: "eventCode", max: -1, model: valuePair},
		{name: "effective", max: 1, text: dateTime},
		{name: "onset", max: 1, text: dateTime},
		{name: "expires", max: 1, text: dateTime},
		{name: "senderName", max: 1, text: anyText},
		{name: "headline", max: 1, text: anyText},
		{name: "description", max: 1, text: anyText},
		{name: "instruction", max: 1, text: anyText},
		{name: "web", max: 1, text: anyText},
		{name: "contact", max: 1, text: anyText},
		{name: "parameter", max: -1, model: valuePair},
		{name: "resource", max: -1, model: []field{
			{name: "resourceDesc", min: 1, max: 1, text: anyText}, {name: "mimeType", min: 1, max: 1, text: anyText},
			{name: "size", max: 1, text: anyText}, {name: "uri", max: 1, text: anyText}, {name: "derefUri", max: 1, text: anyText},
			{name: "digest", max: 1, text: anyText},
		}},
		{name: "area", max: -1, model: []field{
			{name: "areaDesc", min: 1, max: 1, text: anyText},
			{name: "polygon", max: -1, text: func(s string) error {
				if !polygonRE.MatchString(s) {
					return fmt.Errorf("polygon %q is not 4 or more lat,lon pairs", s)
				}
				if p := strings.Fields(s); p[0] != p[len(p)-1] {
					return fmt.Errorf("polygon %q is not closed", s)
				}
				return nil
			}},
			{name: "circle", max: -1, text: func(s string) error {
				if !circleRE.MatchString(s) {
					return fmt.Errorf("circle %q is not \"lat,lon radius\"", s)
				}
				return nil
			}},
			{name: "geocode", max: -1, model: valuePair},
			{name: "altitude", max: 1, text: anyText},
			{name: "ceiling", max: 1, text: anyText},
		}},
	}},
}

// checkSeq matches n's children against the sequence model.
func checkSeq(n *node, model []field) error {
	i := 0
	for _, f := range model {
		count := 0
		for i < len(n.children) && n.children[i].name.Local == f.name && n.children[i].name.Space == Namespace {
			c := n.children[i]
			if f.model != nil {
				if err := checkSeq(c, f.model); err != nil {
					return fmt.Errorf("%s: %w", f.name, err)
				}
			} else {
				if len(c.children) > 0 {
					return fmt.Errorf("%s must hold text only", f.name)
				}
				if err := f.text(c.text); err != nil {
					return fmt.Errorf("%s: %w", f.name, err)
				}
			}
			count++
			i++
		}
		if count < f.min {
			return fmt.Errorf("<%s> missing in <%s>", f.name, n.name.Local)
		}
		if f.max >= 0 && count > f.max {
			return fmt.Errorf("<%s> %d times in <%s> (at most %d)", f.name, count, n.name.Local, f.max)
		}
	}
	if i < len(n.children) {
		return fmt.Errorf("unexpected <%s> in <%s> (wrong order or not a CAP 1.2 element)", n.children[i].name.Local, n.name.Local)
	}
	return nil
}
