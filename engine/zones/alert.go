package zones

import (
	"hash/fnv"
	"slices"
	"strconv"
)

// Alert statuses. A lasting condition (congestion held, an incident inside, a sensor over its threshold, a
// crowd) is active until it ends and is then resolved; a unit entering or leaving is an event, over at once.
const (
	AlertActive   = "active"
	AlertResolved = "resolved"
	AlertEvent    = "event"
)

// Evidence is what made an alert fire.
type Evidence struct {
	Kind  string  `json:"kind"` // cell, incident, unit, sensor, camera
	ID    string  `json:"id"`
	Type  string  `json:"type,omitempty"`
	TS    int64   `json:"ts"`
	Lat   float64 `json:"lat"`
	Lng   float64 `json:"lng"`
	Value float64 `json:"value,omitempty"` // the zone's TPI, a sensor's value, a crowd count
	// Threshold is the value it was judged against.
	Threshold float64 `json:"threshold,omitempty"`
	Unit      string  `json:"unit,omitempty"`
}

// Alert is one firing of a zone's rule.
type Alert struct {
	ID         string     `json:"id"` // deterministic: the same log gives the same ids
	ZoneID     string     `json:"zone_id"`
	ZoneName   string     `json:"zone_name"`
	ZoneKind   string     `json:"zone_kind"`
	Rule       string     `json:"rule"` // a rule type, or "hazard" for a hazard zone's own sensor judgement
	RuleIndex  int        `json:"rule_index"`
	Subject    string     `json:"subject,omitempty"` // the incident, unit or sensor id ("" for congestion)
	Status     string     `json:"status"`
	Severity   int        `json:"severity"`
	Message    string     `json:"message"`
	Lat        float64    `json:"lat"`
	Lng        float64    `json:"lng"`
	FiredAt    int64      `json:"fired_at"` // event time, ms
	UpdatedAt  int64      `json:"updated_at"`
	ResolvedAt int64      `json:"resolved_at,omitempty"`
	Evidence   []Evidence `json:"evidence"`
	// Closures are the road links a hazard alert recommends closing; unit routing avoids them while the alert
	// is active.
	Closures []string `json:"closures,omitempty"`
	// IncidentID is the incident behind the alert (incident rules) or the hazard incident the engine opened
	// from the same sensor.
	IncidentID string `json:"incident_id,omitempty"`
	// Version counts the alert's changes (1 when fired): CAP updates and webhooks carry it.
	Version int `json:"version"`
}

// Active reports whether the alert is a condition still holding.
func (a *Alert) Active() bool { return a.Status == AlertActive }

const maxAlertEvidence = 16

func (a *Alert) clone() Alert {
	c := *a
	c.Evidence = slices.Clone(a.Evidence)
	c.Closures = slices.Clone(a.Closures)
	return c
}

func (a *Alert) addEvidence(e Evidence) {
	a.Evidence = append(a.Evidence, e)
	if len(a.Evidence) > maxAlertEvidence {
		a.Evidence = append(a.Evidence[:0], a.Evidence[len(a.Evidence)-maxAlertEvidence:]...)
	}
}

// alertID is a function of what fired and when, so replays give the same ids.
func alertID(zone string, rule int, subject string, firedAt int64) string {
	h := fnv.New64a()
	h.Write([]byte(zone))
	h.Write([]byte{0})
	h.Write([]byte(strconv.Itoa(rule)))
	h.Write([]byte{0})
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write([]byte(strconv.FormatInt(firedAt, 10)))
	return "al-" + strconv.FormatUint(h.Sum64(), 36)
}

// condKey names a lasting condition: one zone, one rule, one subject.
type condKey struct {
	zone    string
	rule    int
	subject string
}
