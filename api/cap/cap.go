// Package cap writes OASIS Common Alerting Protocol 1.2 messages for confirmed incidents and zone alerts, keeps
// the message chain of each (Alert, then Update, then Cancel when it clears, each referencing the earlier
// ones), and renders the recent messages as an Atom feed. It is the format IRIS and public alerting systems
// consume (docs/cap.md).
package cap

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// Namespace is CAP 1.2's XML namespace.
const Namespace = "urn:oasis:names:tc:emergency:cap:1.2"

// Alert is a CAP 1.2 <alert>. Field order is the schema's element order.
type Alert struct {
	XMLName    xml.Name `xml:"urn:oasis:names:tc:emergency:cap:1.2 alert"`
	Identifier string   `xml:"identifier"`
	Sender     string   `xml:"sender"`
	Sent       string   `xml:"sent"`
	Status     string   `xml:"status"`
	MsgType    string   `xml:"msgType"`
	Source     string   `xml:"source,omitempty"`
	Scope      string   `xml:"scope"`
	Code       []string `xml:"code,omitempty"`
	Note       string   `xml:"note,omitempty"`
	References string   `xml:"references,omitempty"`
	Incidents  string   `xml:"incidents,omitempty"`
	Info       []Info   `xml:"info"`
}

// Info is a CAP <info> block.
type Info struct {
	Language    string   `xml:"language,omitempty"`
	Category    []string `xml:"category"`
	Event       string   `xml:"event"`
	Response    []string `xml:"responseType,omitempty"`
	Urgency     string   `xml:"urgency"`
	Severity    string   `xml:"severity"`
	Certainty   string   `xml:"certainty"`
	EventCode   []Value  `xml:"eventCode,omitempty"`
	Effective   string   `xml:"effective,omitempty"`
	Onset       string   `xml:"onset,omitempty"`
	Expires     string   `xml:"expires,omitempty"`
	SenderName  string   `xml:"senderName,omitempty"`
	Headline    string   `xml:"headline,omitempty"`
	Description string   `xml:"description,omitempty"`
	Instruction string   `xml:"instruction,omitempty"`
	Web         string   `xml:"web,omitempty"`
	Parameter   []Value  `xml:"parameter,omitempty"`
	Area        []Area   `xml:"area,omitempty"`
}

// Value is a valueName/value pair (eventCode, parameter, geocode).
type Value struct {
	Name  string `xml:"valueName"`
	Value string `xml:"value"`
}

// Area is a CAP <area>.
type Area struct {
	Desc    string   `xml:"areaDesc"`
	Polygon []string `xml:"polygon,omitempty"`
	Circle  []string `xml:"circle,omitempty"`
	Geocode []Value  `xml:"geocode,omitempty"`
}

// Time formats t as CAP's dateTime: seconds and a numeric zone, never "Z" or fractions (the schema's pattern).
func Time(ms int64) string { return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05-07:00") }

// Marshal renders a as an XML document.
func Marshal(a *Alert) ([]byte, error) {
	out, err := xml.MarshalIndent(a, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("cannot encode CAP alert %s: %w", a.Identifier, err)
	}
	return append([]byte(xml.Header), out...), nil
}

// Circle is a CAP circle "lat,lon radius_km".
func Circle(lat, lng, km float64) string { return fmt.Sprintf("%.6f,%.6f %g", lat, lng, km) }

// Polygon is a CAP polygon from a ring of [lng, lat] (closed if it was not; CAP wants lat,lon pairs).
func Polygon(ring [][2]float64) string {
	var b strings.Builder
	for i, p := range ring {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.6f,%.6f", p[1], p[0])
	}
	if len(ring) > 0 && ring[0] != ring[len(ring)-1] {
		fmt.Fprintf(&b, " %.6f,%.6f", ring[0][1], ring[0][0])
	}
	return b.String()
}

// ref is one entry of <references>: sender,identifier,sent.
func ref(a *Alert) string { return a.Sender + "," + a.Identifier + "," + a.Sent }
