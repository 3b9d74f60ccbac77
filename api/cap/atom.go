package cap

import (
	"bytes"
	"encoding/xml"
	"io"
	"time"
)

// WriteAtom writes msgs (newest first) as an Atom feed whose entries link to each message at
// base+"/"+identifier and carry the CAP <alert> inline as their content (OASIS CAP feeds practice).
func WriteAtom(w io.Writer, self, base string, msgs []Message) error {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<feed xmlns="http://www.w3.org/2005/Atom">` + "\n")
	el := func(name, text string) {
		b.WriteString("<" + name + ">")
		xml.EscapeText(&b, []byte(text))
		b.WriteString("</" + name + ">\n")
	}
	el("id", "urn:citybrain:cap")
	el("title", "CityBrain alerts (CAP 1.2)")
	updated := time.Unix(0, 0).UTC()
	for _, m := range msgs {
		if t, err := time.Parse("2006-01-02T15:04:05-07:00", m.Alert.Sent); err == nil && t.After(updated) {
			updated = t.UTC()
		}
	}
	el("updated", updated.Format(time.RFC3339))
	b.WriteString("<author><name>CityBrain</name></author>\n")
	b.WriteString(`<link rel="self" type="application/atom+xml" href="`)
	xml.EscapeText(&b, []byte(self))
	b.WriteString("\"/>\n")
	for _, m := range msgs {
		b.WriteString("<entry>\n")
		el("id", "urn:citybrain:cap:"+m.Alert.Identifier)
		el("title", m.Title)
		t, _ := time.Parse("2006-01-02T15:04:05-07:00", m.Alert.Sent)
		el("updated", t.UTC().Format(time.RFC3339))
		b.WriteString(`<link rel="alternate" type="application/cap+xml" href="`)
		xml.EscapeText(&b, []byte(base+"/"+m.Alert.Identifier))
		b.WriteString("\"/>\n")
		b.WriteString(`<content type="application/cap+xml">` + "\n")
		b.Write(bytes.TrimPrefix(m.XML, []byte(xml.Header)))
		b.WriteString("\n</content>\n</entry>\n")
	}
	b.WriteString("</feed>\n")
	_, err := w.Write(b.Bytes())
	return err
}
