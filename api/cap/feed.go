package cap

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"

	"citybrain/engine"
	"citybrain/engine/zones"
)

// Config configures a Feed.
type Config struct {
	Sender string // CAP sender (no spaces or commas); default "citybrain@citybrain.local"
	Name   string // senderName; default "CityBrain"
	Keep   int    // messages kept for the Atom feed (default 500)
	// ZoneRing returns a zone's polygon ring ([lng, lat]) for the <area> of its alerts (nil: a circle).
	ZoneRing func(zoneID string) [][2]float64
	// OnMessage, when set, gets each new message (its XML) on the caller's goroutine; it must not block.
	OnMessage func(m Message)
}

// Message is one CAP message of the feed.
type Message struct {
	Alert *Alert
	XML   []byte
	Key   string // "incident:<id>" or "alert:<id>"
	Title string
}

// chain is the messages sent about one incident or zone alert.
type chain struct {
	Refs      []string `json:"refs"` // references of every message sent, oldest first
	Version   int      `json:"version"`
	Cancelled bool     `json:"cancelled"`
	Sig       string   `json:"sig"` // what the last message said (an update goes out when it changes)
}

// Feed turns incident and zone-alert changes into CAP messages. Safe for concurrent use.
type Feed struct {
	cfg    Config
	mu     sync.Mutex
	chains map[string]*chain
	recent []Message // oldest first, at most cfg.Keep
}

// NewFeed returns an empty feed.
func NewFeed(cfg Config) *Feed {
	if cfg.Sender == "" {
		cfg.Sender = "citybrain@citybrain.local"
	}
	cfg.Sender = strings.NewReplacer(" ", "_", ",", "_").Replace(cfg.Sender)
	if cfg.Name == "" {
		cfg.Name = "CityBrain"
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 500
	}
	return &Feed{cfg: cfg, chains: map[string]*chain{}}
}

// severity maps 1..5 to CAP's severity.
func severity(s int) string {
	switch {
	case s >= 5:
		return "Extreme"
	case s == 4:
		return "Severe"
	case s == 3:
		return "Moderate"
	case s >= 1:
		return "Minor"
	}
	return "Unknown"
}

// category maps an incident type or zone kind to CAP's category.
func category(t string) string {
	switch t {
	case "fire": // also zones.KindFire
		return "Fire"
	case "flood", zones.KindUnderpass: // "flood" is also zones.KindFlood
		return "Met"
	case "medical":
		return "Health"
	case "hazard", zones.KindGas:
		return "Safety"
	case zones.KindPipe:
		return "Infra"
	case "crash", "stalled_vehicle", "debris", "wrong_way", "pedestrian", "congestion_anomaly", "road_closure", zones.KindSchool, zones.KindVenue, zones.KindCordon, zones.KindGeneral:
		return "Transport"
	}
	return "Other"
}

// OnIncidents takes the incidents a tick changed. A confirmed incident is announced (Alert), its changes
// while active are Updates, and its clearing or dismissal a Cancel; suspected incidents are not published.
func (f *Feed) OnIncidents(list []engine.Incident) {
	for i := range list {
		in := &list[i]
		key := "incident:" + in.ID
		f.mu.Lock()
		c := f.chains[key]
		f.mu.Unlock()
		switch {
		case in.Status == engine.StatusConfirmed:
			sig := fmt.Sprintf("%s|%d|%.4f|%.4f", in.Type, in.Severity, in.Lat, in.Lng)
			if c != nil && (c.Cancelled || c.Sig == sig) {
				continue
			}
			f.emit(key, sig, in.UpdatedAt, "Public", incidentInfo(f.cfg.Name, in, c == nil), "incident "+in.ID)
		case (in.Status == engine.StatusCleared || in.Status == engine.StatusDismissed) && c != nil && !c.Cancelled:
			info := incidentInfo(f.cfg.Name, in, false)
			info.Headline = fmt.Sprintf("%s %s: %s", strings.ReplaceAll(in.Type, "_", " "), in.ID, in.Status)
			info.Urgency, info.Certainty = "Past", "Observed"
			info.Response = []string{"AllClear"}
			ts := in.ClearedAt
			if ts == 0 {
				ts = in.UpdatedAt
			}
			f.emit(key, "cancel", ts, "Public", info, "incident "+in.ID)
		}
	}
}

func incidentInfo(name string, in *engine.Incident, first bool) Info {
	typ := strings.ReplaceAll(in.Type, "_", " ")
	return Info{
		Language: "en-US", Category: []string{category(in.Type)}, Event: typ,
		Response: []string{"Avoid"}, Urgency: "Immediate", Severity: severity(in.Severity), Certainty: "Observed",
		EventCode:  []Value{{"citybrain_type", in.Type}},
		Onset:      Time(max(in.FirstEvidenceAt, 0)),
		SenderName: name,
		Headline:   fmt.Sprintf("%s (severity %d) near %.4f, %.4f", typ, in.Severity, in.Lat, in.Lng),
		Description: fmt.Sprintf("CityBrain incident %s, %s, score %.2f from %d pieces of evidence; detected %s.",
			in.ID, in.Status, in.Score, in.EvidenceCount, Time(in.DetectedAt)),
		Instruction: "Avoid the area; follow directions of traffic police and emergency services.",
		Parameter:   []Value{{"citybrain_incident_id", in.ID}, {"citybrain_status", in.Status}},
		Area:        []Area{{Desc: fmt.Sprintf("Around %.4f, %.4f", in.Lat, in.Lng), Circle: []string{Circle(in.Lat, in.Lng, 0.3)}}},
	}
}

// OnAlerts takes zone alerts that fired or changed. Unit movements (enter/leave events) are operational and
// are not published.
func (f *Feed) OnAlerts(list []zones.Alert) {
	for i := range list {
		a := &list[i]
		if a.Status == zones.AlertEvent {
			continue
		}
		key := "alert:" + a.ID
		f.mu.Lock()
		c := f.chains[key]
		f.mu.Unlock()
		info := f.alertInfo(a)
		switch a.Status {
		case zones.AlertActive:
			sig := fmt.Sprintf("%d|%s|%s", a.Severity, a.Message, a.IncidentID)
			if c != nil && (c.Cancelled || c.Sig == sig) {
				continue
			}
			f.emit(key, sig, a.UpdatedAt, "Public", info, "zone "+a.ZoneID)
		case zones.AlertResolved:
			if c == nil || c.Cancelled {
				continue
			}
			info.Urgency, info.Response = "Past", []string{"AllClear"}
			f.emit(key, "cancel", a.ResolvedAt, "Public", info, "zone "+a.ZoneID)
		}
	}
}

func (f *Feed) alertInfo(a *zones.Alert) Info {
	area := Area{Desc: a.ZoneName}
	if area.Desc == "" {
		area.Desc = a.ZoneID
	}
	if f.cfg.ZoneRing != nil {
		if ring := f.cfg.ZoneRing(a.ZoneID); len(ring) >= 3 {
			area.Polygon = []string{Polygon(ring)}
		}
	}
	if area.Polygon == nil {
		area.Circle = []string{Circle(a.Lat, a.Lng, 0.2)}
	}
	info := Info{
		Language: "en-US", Category: []string{category(a.ZoneKind)}, Event: "zone " + a.Rule,
		Response: []string{"Monitor"}, Urgency: "Immediate", Severity: severity(a.Severity), Certainty: "Observed",
		EventCode: []Value{{"citybrain_rule", a.Rule}}, Onset: Time(a.FiredAt), SenderName: f.cfg.Name,
		Headline: a.Message, Description: a.Message,
		Parameter: []Value{{"citybrain_alert_id", a.ID}, {"citybrain_zone_id", a.ZoneID}},
		Area:      []Area{area},
	}
	if a.Rule == "hazard" {
		info.Response = []string{"Avoid"}
		info.Instruction = "Do not enter the area."
		if len(a.Closures) > 0 {
			info.Instruction = fmt.Sprintf("Do not enter the area; road links recommended closed: %s.", strings.Join(a.Closures, " "))
		}
	}
	if a.IncidentID != "" {
		info.Parameter = append(info.Parameter, Value{"citybrain_incident_id", a.IncidentID})
	}
	return info
}

// emit writes the next message of key's chain (Alert first, Update after, Cancel when sig is "cancel").
func (f *Feed) emit(key, sig string, ts int64, scope string, info Info, incident string) {
	f.mu.Lock()
	c := f.chains[key]
	msgType := "Update"
	if c == nil {
		c = &chain{}
		f.chains[key] = c
		msgType = "Alert"
	}
	if sig == "cancel" {
		msgType = "Cancel"
		c.Cancelled = true
	}
	c.Version++
	c.Sig = sig
	id := strings.NewReplacer(":", "-", " ", "_", ",", "_").Replace("citybrain-"+key) + fmt.Sprintf("-%d", c.Version)
	a := &Alert{Identifier: id, Sender: f.cfg.Sender, Sent: Time(ts), Status: "Actual", MsgType: msgType,
		Source: "CityBrain", Scope: scope, References: strings.Join(c.Refs, " "), Incidents: strings.ReplaceAll(incident, " ", "_"),
		Info: []Info{info}}
	c.Refs = append(c.Refs, ref(a))
	if len(c.Refs) > 20 {
		c.Refs = append(c.Refs[:1], c.Refs[len(c.Refs)-19:]...) // the first Alert and the latest updates
	}
	data, err := Marshal(a)
	if err != nil {
		f.mu.Unlock()
		return
	}
	m := Message{Alert: a, XML: data, Key: key, Title: msgType + ": " + info.Headline}
	f.recent = append(f.recent, m)
	if len(f.recent) > f.cfg.Keep {
		f.recent = append(f.recent[:0], f.recent[len(f.recent)-f.cfg.Keep:]...)
	}
	if len(f.chains) > 4*f.cfg.Keep+1000 {
		f.pruneLocked()
	}
	f.mu.Unlock()
	if f.cfg.OnMessage != nil {
		f.cfg.OnMessage(m)
	}
}

// pruneLocked forgets cancelled chains no longer in the recent messages.
func (f *Feed) pruneLocked() {
	live := map[string]bool{}
	for _, m := range f.recent {
		live[m.Key] = true
	}
	for k, c := range f.chains {
		if c.Cancelled && !live[k] {
			delete(f.chains, k)
		}
	}
}

// Recent returns the kept messages, newest first.
func (f *Feed) Recent() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Message, len(f.recent))
	for i, m := range f.recent {
		out[len(out)-1-i] = m
	}
	return out
}

// Get returns the kept message with identifier id.
func (f *Feed) Get(id string) (Message, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.recent {
		if m.Alert.Identifier == id {
			return m, true
		}
	}
	return Message{}, false
}

type feedState struct {
	Chains map[string]*chain `json:"chains"`
	Recent [][]byte          `json:"recent"` // XML of each kept message, oldest first
	Keys   []string          `json:"keys"`
	Titles []string          `json:"titles"`
}

// MarshalState encodes the chains and kept messages for a snapshot.
func (f *Feed) MarshalState() ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := feedState{Chains: f.chains}
	for _, m := range f.recent {
		st.Recent = append(st.Recent, m.XML)
		st.Keys = append(st.Keys, m.Key)
		st.Titles = append(st.Titles, m.Title)
	}
	return json.Marshal(&st)
}

// RestoreState loads what MarshalState wrote.
func (f *Feed) RestoreState(data []byte) error {
	var st feedState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("cannot decode CAP feed state: %w", err)
	}
	if len(st.Keys) != len(st.Recent) || len(st.Titles) != len(st.Recent) {
		return fmt.Errorf("cannot restore CAP feed state: %d messages, %d keys, %d titles", len(st.Recent), len(st.Keys), len(st.Titles))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st.Chains != nil {
		f.chains = st.Chains
	}
	f.recent = nil
	for i, x := range st.Recent {
		var a Alert
		if err := xml.Unmarshal(x, &a); err != nil {
			return fmt.Errorf("cannot restore CAP message %d: %w", i, err)
		}
		f.recent = append(f.recent, Message{Alert: &a, XML: x, Key: st.Keys[i], Title: st.Titles[i]})
	}
	return nil
}
