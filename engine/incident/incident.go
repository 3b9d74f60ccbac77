// Package incident is the engine's incident room: evidence (what a camera, caller, sensor, bus or the traffic
// rule says about a place), the traffic anomaly rule's judgement, fusion of evidence into incidents, their
// lifecycle from first evidence to clearance, operator actions and camera records. It is driven by the
// engine's tick goroutine and knows nothing of shards, HTTP or NATS.
package incident

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/uber/h3-go/v4"

	"citybrain/engine/schema"
	"citybrain/geo"
)

// Incident statuses (spec/api.md "Incidents").
const (
	StatusSuspected = "suspected"
	StatusConfirmed = "confirmed"
	StatusCleared   = "cleared"
	StatusDismissed = "dismissed"
)

// Tracker thresholds. A candidate becomes a visible (suspected) incident when its fused score reaches
// DetectScore, and is confirmed automatically at ConfirmScore (or by an operator).
const (
	DetectScore   = 0.5
	ConfirmScore  = 0.85
	mergeM        = 350.0        // evidence this close to an incident joins it
	CandidateTTL  = 5 * 60_000   // a candidate that never reaches DetectScore is dropped after this
	QuietMs       = 8 * 60_000   // an incident with no evidence this long clears once traffic recovered
	maxEvidence   = 64           // evidence kept per incident (the first firstEvidence and the newest; counts are kept in full)
	firstEvidence = 16           // the evidence that opened and detected an incident, kept for its whole life
	historyMs     = 6 * 3600_000 // ended incidents are kept this long for GET ?status=all
	affectSpanMs  = 5 * 60_000   // a cell stays in the affected area this long after its last collapse evidence
	sourceRepeat  = 0.08         // each repeated detection by the same source adds this to its weight
	maxSourceW    = 0.95         // a single source never says more than this
	weightFloor   = 0.2          // the least weight a chronically wrong camera keeps
	singleKindCap = 0.84         // the highest score one kind of evidence alone reaches
	unrepeatedCap = 0.45         // the most an unrepeated camera frame or traffic hit says
	// videoRepeats: frames of one camera before its weight counts in full. A stall alarm repeats every
	// minute the vehicle stands, so three frames are a vehicle standing for two more minutes (stall alarms
	// count by vehicle: sourceAcc.stall); a classifier's mistake rarely repeats twice. One frame with any
	// other evidence about its road (a traffic candidate, a call) is an incident at once.
	videoRepeats   = 3
	trafficRepeats = 3           // consecutive anomalous bucket ends of one cell (the cell rule), after persistence
	namedJoinMs    = 10 * 60_000 // evidence naming a new cause joins an incident detected at most this long ago
	confidenceN    = 20.0        // detections after which a camera's record fully sets its weight
	// queueHops: traffic judgements on links up to this many steps upstream of an incident's links are its
	// queue spilling back, whatever the distance: they join it and do not move it.
	queueHops = 3
	// headFoundMs: a judgement downstream of an incident's head is the queue's head found further on only
	// this long after the detection (the judge's two-minute window and its longest persistence behind a
	// feeder's alarm, rounded up to CandidateTTL); later it is a new event (tracker.relate).
	headFoundMs = CandidateTTL
	// drainMs: an incident's queue upstream of links that flow again is still draining this long after they
	// began to flow (tracker.relate, relDrain).
	drainMs = CandidateTTL
)

// EvidenceRef is evidence as listed on an incident.
type EvidenceRef struct {
	Kind   string  `json:"kind"`
	ID     string  `json:"id"`
	Type   string  `json:"type"`
	TS     int64   `json:"ts"`
	Weight float64 `json:"weight"`
	Cell   uint64  `json:"cell"`
	doubt  bool    // a stall alarm on links the judge found flowing (tracker internal; not in the API)
	// ties: the pairs (a judge's link, a camera: link source key, camera source key) this evidence found to
	// be about one road (sourceAcc.TiedTo; tracker internal, for detectionTime).
	ties  [][2]string
	stood int // a stall alarm's: the alarms of its vehicle so far (sourceAcc.Stood; tracker internal)
}

// AuditEntry is one operator action on an incident.
type AuditEntry struct {
	TS     int64  // wall-clock time of the action, ms
	By     string // principal name
	Role   string
	Status string
	Note   string
}

// Incident is a tracked incident. Values handed out by Tracker.Incidents are copies.
type Incident struct {
	ID              string
	Type            string
	Lat, Lng        float64
	Cell            uint64
	Score           float64
	Severity        int
	Status          string
	FirstEvidenceAt int64
	DetectedAt      int64
	UpdatedAt       int64
	ClearedAt       int64 // 0 while active
	LastEvidenceAt  int64
	Evidence        []EvidenceRef
	EvidenceCount   int
	Affected        []uint64 // congested cells around the incident
	Audit           []AuditEntry
	Operator        bool // status set by an operator; the tracker no longer changes it except to clear
	ReportSeverity  int  // the highest severity a person reported

	sources map[string]*sourceAcc
	types   map[string]float64
	links   map[int32]bool // road links whose traffic judgements joined it
	// heads: those of its links that place it, where its queue is held (the links it was first placed on,
	// or joined by distance, or the queue's head found further on); the others are its queue, links upstream
	// it took as the queue spilled back. Empty in snapshots from before it: then every link is a head.
	heads map[int32]bool
}

type sourceAcc struct {
	Kind   schema.Kind `json:"kind"`
	Weight float64     `json:"weight"` // best single weight
	N      int         `json:"n"`
	// Doubt: most frames of this camera on the incident (Doubted of N) were stall alarms on links the judge
	// found flowing; it stays under unrepeatedCap however often it repeats.
	Doubt   bool `json:"doubt,omitempty"`
	Doubted int  `json:"doubted,omitempty"`
	// Where this source places the incident: the mean of its evidence's positions weighted by their position
	// weights (SumLat/SumLng over SumW), counting in the incident's position once with its best position
	// weight PosW, however often the source repeats.
	SumLat float64 `json:"sum_lat,omitempty"`
	SumLng float64 `json:"sum_lng,omitempty"`
	SumW   float64 `json:"sum_w,omitempty"`
	PosW   float64 `json:"pos_w,omitempty"`
	// The spot of a camera's stall alarms: where its latest run of stall frames stands (the run's first
	// frame, at SpotAt; its latest at SpotLast), how many frames the run holds (SpotN) and how many of them
	// were doubted.
	SpotLat     float64 `json:"spot_lat,omitempty"`
	SpotLng     float64 `json:"spot_lng,omitempty"`
	SpotAt      int64   `json:"spot_at,omitempty"`
	SpotLast    int64   `json:"spot_last,omitempty"`
	SpotN       int     `json:"spot_n,omitempty"`
	SpotDoubted int     `json:"spot_doubted,omitempty"`
	// Scenes: a camera's detections by the scene they name (sceneOf), so that only frames of one scene repeat
	// each other; nil in snapshots from before it (then N counts).
	Scenes map[string]int `json:"scenes,omitempty"`
	// Late: a camera that joined the incident after it was detected. Its stall alarms from a queue do not
	// move it (tracker.add).
	Late bool `json:"late,omitempty"`
	// Links: a camera's, the road links under its frames (within flowNearM of them); Link: a judge's link
	// source's, 1 + its link. TiedTo: a judge's link source's, the cameras (source keys) of the incident
	// whose frames stand in its queue: its link is under them or ahead of them (within queueHops
	// downstream); a camera's, the other cameras of the incident whose frames are on its road (links under
	// them within queueHops up- or downstream of each other). Evidence about one road (fuse).
	Links  []int32  `json:"links,omitempty"`
	Link   int32    `json:"link,omitempty"`
	TiedTo []string `json:"tied_to,omitempty"`
	// A camera's stall alarms by vehicle: Stalls of its frames were stall alarms, and the vehicle alarmed
	// most often alarmed Stood times (its alarms one spot, a minute apart: Vehicles holds the vehicles whose
	// next alarm may still come). Its stall alarms repeat each other only as one vehicle's do (repeats).
	// Last: the source's newest evidence, a camera's newest frame, a judged link's newest judgement (event
	// time; 0 in snapshots from before it).
	Last     int64      `json:"last,omitempty"`
	Stalls   int        `json:"stalls,omitempty"`
	Stood    int        `json:"stood,omitempty"`
	Vehicles []standing `json:"vehicles,omitempty"`
}

// standing is a vehicle a camera's stall alarms found standing: where, its latest alarm and how many.
type standing struct {
	Lat  float64 `json:"lat"`
	Lng  float64 `json:"lng"`
	Last int64   `json:"last"`
	N    int     `json:"n"`
}

// maxVehicles bounds the standing vehicles kept per camera.
const maxVehicles = 64

// stall adds a stall alarm to the camera's standing vehicles and returns how often its vehicle has alarmed:
// a frame at most spotM from a vehicle's spot a minute (± repeatSlack) after its latest alarm is that
// vehicle's next alarm; any other is a new vehicle's first.
func (sa *sourceAcc) stall(ev Evidence) int {
	keep := sa.Vehicles[:0]
	for _, v := range sa.Vehicles {
		if ev.TS-v.Last <= stallRepeat+repeatSlack {
			keep = append(keep, v)
		}
	}
	sa.Vehicles = keep
	sa.Stalls++
	p := geo.LatLng{Lat: ev.Lat, Lng: ev.Lng}
	for i := range sa.Vehicles {
		v := &sa.Vehicles[i]
		if gap := ev.TS - v.Last; gap >= stallRepeat-repeatSlack && geo.DistanceM(p, geo.LatLng{Lat: v.Lat, Lng: v.Lng}) <= spotM {
			v.Last = ev.TS
			v.N++
			sa.Stood = max(sa.Stood, v.N)
			return v.N
		}
	}
	if len(sa.Vehicles) < maxVehicles {
		sa.Vehicles = append(sa.Vehicles, standing{Lat: ev.Lat, Lng: ev.Lng, Last: ev.TS, N: 1})
	}
	sa.Stood = max(sa.Stood, 1)
	return 1
}

// A camera's frames repeat each other only when they name one scene. A classifier's mistakes are one frame,
// sometimes two, of whatever type (issue 12, tenth pass: three planted frames of one camera, a pedestrian and
// two of debris, made a false alarm in grid at both probe shares); a scene that is really there is seen as
// the same thing again. Crash, stalled vehicle and debris are one scene (something standing in the road: a
// classifier may name one scene by each of them in turn); a wrong-way driver, a pedestrian and smoke are each
// their own.
func sceneOf(typ string) string {
	switch typ {
	case "crash", "stalled_vehicle", "debris":
		return obstacle
	}
	return typ
}

// seen counts a detection of typ (N already counts it) by the scene it names. A source restored from a
// snapshot from before scenes were counted takes its earlier detections as of this frame's scene, as they
// counted then.
func (sa *sourceAcc) seen(typ string) {
	if sa.Scenes == nil {
		sa.Scenes = map[string]int{sceneOf(typ): sa.N - 1}
	}
	sa.Scenes[sceneOf(typ)]++
}

// obstacle is the scene of something standing in the road (sceneOf).
const obstacle = "obstacle"

// scene is the scene the source named most often (the first in order on a tie; "" for a source restored from
// a snapshot from before scenes were counted, which then counts as one scene with any other such source).
func (sa *sourceAcc) scene() string {
	best, n := "", 0
	for sc, c := range sa.Scenes {
		if c > n || c == n && sc < best {
			best, n = sc, c
		}
	}
	return best
}

// sees reports whether the source named the scene sc (a source from before scenes were counted may have).
func (sa *sourceAcc) sees(sc string) bool { return sa.Scenes == nil || sa.Scenes[sc] > 0 }

// repeats is how often the source saw its most repeated scene (N for a source restored from an older snapshot):
// the obstacle scene's stall alarms count as the alarms of the vehicle that alarmed most (stall), its other
// frames one each.
func (sa *sourceAcc) repeats() int {
	if sa.Scenes == nil {
		return sa.N
	}
	n := 0
	for sc, c := range sa.Scenes {
		if sc == obstacle {
			c += sa.Stood - sa.Stalls
		}
		n = max(n, c)
	}
	return n
}

// Stall alarms from one spot. A camera raises a stall alarm for each vehicle standing in its view, and again
// every minute it still stands. A queue (what the doubt of a stall alarm is about) stands several vehicles in
// view: its camera's alarms churn among spots a vehicle's length or more apart, and each vehicle moves on
// when the queue does. One vehicle standing alone at one spot, its alarm once a minute and nothing else
// alarming from the camera in between, through videoRepeats alarms, is not a queue: when the judge finds its
// link flowing, traffic is passing a stalled vehicle (a lane blocked, issue 12, eighth pass), and the judge's
// note no longer doubts it. A frame at the spot sooner than a minute after the last (a second vehicle there,
// or a classifier's double frame) or much later (the vehicle left, another came) starts a new run.
const (
	spotM       = 8.0    // a stall frame this close to the run's first is the same vehicle (± a camera's 2-3 m)
	stallRepeat = 60_000 // ms: a standing vehicle's alarm repeats this often
	repeatSlack = 20_000 // ms: ± this
	// frameAtOnce: frames of two cameras this far apart or closer are seen at once (fuse).
	frameAtOnce = stallRepeat + repeatSlack
)

// stand adds a stall frame to the camera's run of frames from one spot and reports whether the run is one
// vehicle standing alone.
func (sa *sourceAcc) stand(ev Evidence) bool {
	gap := ev.TS - sa.SpotLast
	if sa.SpotN == 0 || gap < stallRepeat-repeatSlack || gap > stallRepeat+repeatSlack ||
		geo.DistanceM(geo.LatLng{Lat: sa.SpotLat, Lng: sa.SpotLng}, geo.LatLng{Lat: ev.Lat, Lng: ev.Lng}) > spotM {
		sa.SpotLat, sa.SpotLng, sa.SpotAt, sa.SpotN, sa.SpotDoubted = ev.Lat, ev.Lng, ev.TS, 0, 0
	}
	sa.SpotN++
	sa.SpotLast = ev.TS
	return sa.SpotN >= videoRepeats
}

// doubt counts one more detection (N already counts it), doubted or not: the source is doubted while most of
// its detections are. One frame the judge happened to find on a suspicious link no longer clears a camera that
// streams stall alarms from a queue for good (an hour of gridlock has such moments).
func (sa *sourceAcc) doubt(d bool) {
	if d {
		sa.Doubted++
	}
	sa.Doubt = 2*sa.Doubted > sa.N
}

// Active reports whether the incident is suspected or confirmed.
func (in *Incident) Active() bool {
	return in.Status == StatusSuspected || in.Status == StatusConfirmed
}

// Action is an operator's change of an incident, carried in the log so that replays and restarts see it.
type Action struct {
	ID         string `json:"id"` // unique; the log deduplicates by it
	IncidentID string `json:"incident_id"`
	Status     string `json:"status"`
	By         string `json:"by"`
	Role       string `json:"role"`
	Note       string `json:"note,omitempty"`
	TS         int64  `json:"ts"` // wall clock of the action, ms
}

// tracker fuses evidence into incidents. Owned by the engine's tick goroutine.
type tracker struct {
	advancedTo int64 // event time up to which advance has run
	lateness   int64 // ms: judgements settle this long before the evidence they weigh
	byID       map[string]*Incident
	order      []*Incident // creation order
	cams       map[string]*camRecord
	topo       *Topology           // nil without a road network
	flow       map[int32]*linkFlow // the judge's last word on each link, in log order
	counts     map[string]*camCounts
}

type camRecord struct {
	Detections int `json:"detections"`
	Confirmed  int `json:"confirmed"` // detections on incidents that were confirmed or corroborated
	Dismissed  int `json:"dismissed"` // detections on incidents an operator dismissed or that never reached detection
	// Pending judgements take effect at their event time, so a detection is weighed by the record as it
	// stood at the detection's own time, whenever the tracker happens to run.
	Pending []camJudgement `json:"pending,omitempty"`
}

type camJudgement struct {
	At   int64 `json:"at"`
	N    int   `json:"n"`
	Good bool  `json:"good"`
}

// settle folds the judgements made at or before ts into the counts.
func (c *camRecord) settle(ts int64) {
	keep := c.Pending[:0]
	for _, j := range c.Pending {
		switch {
		case j.At > ts:
			keep = append(keep, j)
		case j.Good:
			c.Confirmed += j.N
		default:
			c.Dismissed += j.N
		}
	}
	c.Pending = keep
}

func newTracker() *tracker {
	return &tracker{byID: map[string]*Incident{}, cams: map[string]*camRecord{}}
}

// camWeight scales a camera's detection by its record: a camera whose alarms are mostly dismissed or never
// corroborated loses weight, one whose alarms are confirmed keeps it (Laplace-smoothed).
func (t *tracker) camWeight(id string, ts int64) float64 {
	c := t.cams[id]
	if c == nil {
		return 1
	}
	c.settle(ts)
	judged := float64(c.Confirmed + c.Dismissed)
	if judged == 0 {
		return 1
	}
	good := (float64(c.Confirmed) + 1) / (judged + 2)
	trust := math.Min(1, judged/confidenceN)
	w := (1-trust)*1 + trust*(0.3+1.4*good)
	return math.Max(weightFloor, math.Min(1, w))
}

// add fuses one piece of evidence.
func (t *tracker) add(ev Evidence) {
	if ev.LinkRef > 0 {
		t.noteLink(ev)
		if ev.Type == flowingType {
			return // a note, not evidence
		}
	}
	if ev.Kind == schema.KindVideo && ev.Type == countType {
		t.noteCount(ev)
		return
	}
	w := ev.Weight
	doubt := t.doubted(ev) || t.countsFlow(ev)
	if ev.Kind == schema.KindVideo {
		w *= t.camWeight(ev.Source, ev.TS-t.lateness)
		c := t.cams[ev.Source]
		if c == nil {
			if len(t.cams) > 200_000 {
				clear(t.cams)
			}
			c = &camRecord{}
			t.cams[ev.Source] = c
		}
		c.Detections++
	}
	if w <= 0 {
		return
	}
	typ := ev.Type
	if ev.Kind == schema.KindSensor {
		typ = sensorIncidentType(ev.Type)
	}
	best := t.nearest(ev)
	if best == nil && t.aftermath(ev) {
		return
	}
	if best == nil {
		id := fmt.Sprintf("inc-%s-%s", strings.ToLower(strconvBase36(ev.TS/1000)), h3.Cell(ev.Cell).String()[7:12])
		for t.byID[id] != nil {
			id += "b"
		}
		best = &Incident{ID: id, Type: typ, Lat: ev.Lat, Lng: ev.Lng, Cell: ev.Cell, FirstEvidenceAt: ev.TS,
			UpdatedAt: ev.TS, sources: map[string]*sourceAcc{}, types: map[string]float64{}}
		t.byID[id] = best
		t.order = append(t.order, best)
	}
	in := best
	// A candidate link (traffic the detector finds suspicious, not blocked) that is not yet one of the
	// links of an incident already detected counts as corroboration only: it neither adds its link to the
	// incident, nor moves it, nor keeps it open. Otherwise the candidates of a congested area carry an
	// incident along the queue's links, link by link, away from the blockage, keep it open for the rest of
	// the hour and make it swallow the calls and camera frames of the next event nearby (issue 12).
	weak := in.Active() && weakTraffic(ev) && !in.links[ev.LinkRef-1]
	key := sourceKey(ev.Kind.String(), ev.Source)
	sa := in.sources[key]
	if sa == nil {
		sa = &sourceAcc{Kind: ev.Kind, Late: in.Status != "" && ev.Kind == schema.KindVideo}
		in.sources[key] = sa
	}
	sa.N++
	sa.Last = max(sa.Last, ev.TS)
	stood := 0
	if ev.Kind == schema.KindVideo {
		sa.seen(ev.Type)
		if queueConfusable[ev.Type] {
			stood = sa.stall(ev)
		}
	}
	alone := false
	if ev.Kind == schema.KindVideo && queueConfusable[ev.Type] {
		if alone = sa.stand(ev); alone {
			// One vehicle standing alone: neither this frame nor the run's earlier ones are a queue's.
			if sa.SpotDoubted > 0 {
				sa.Doubted -= sa.SpotDoubted
				sa.SpotDoubted = 0
				for i := range in.Evidence {
					if e := &in.Evidence[i]; e.doubt && e.ID == ev.Source && e.Kind == ev.Kind.String() && e.TS >= sa.SpotAt {
						e.doubt = false
					}
				}
			}
			doubt = false
		} else if doubt {
			sa.SpotDoubted++
		}
	}
	sa.doubt(doubt)
	sa.Weight = math.Max(sa.Weight, w)
	var ties [][2]string
	if t.topo != nil {
		ties = t.tie(in, key, sa, ev)
	}
	if ev.Kind == schema.KindReport {
		in.types[typ] += 1.5 * w // a person names the cause better than a classifier
	} else {
		in.types[typ] += w
	}
	// The position leans to the strongest evidence; reports carry caller position error, so they count less.
	// Each source (a camera, a caller, a link) places the incident once, at the mean of its own evidence,
	// with its best weight: a camera repeating a stall alarm every second, or a queue's link judged every
	// bucket, does not outweigh one call or one alarm by repeating (issue 12, fifth pass: a camera's frames of
	// a queue 250-450 m long, or a candidate link judged for ten minutes, carried incidents 330-550 m from the
	// blockage the call and the alarm were about).
	// A traffic judgement upstream of a detected incident's links is its queue spilling back: it does not
	// move the incident, then or later; one downstream of its head that has found the queue's head further on
	// (relate) moves it there. A candidate (never detected) is not followed along the queue: its evidence is
	// averaged.
	pw := w
	if ev.Kind == schema.KindReport {
		pw *= 0.3
	}
	rel := relNone
	if ev.LinkRef > 0 && !weak {
		rel = t.relate(in, ev.LinkRef-1, ev.TS)
	}
	if rel == relHead && ev.Squeeze {
		// The squeeze judge reads a point where traffic passes, not a queue's head found further on.
		rel = relNone
	}
	if rel == relDrain {
		// Its queue draining: held as the incident's queue, as a candidate link is (relate).
		weak = true
	}
	if weak || sa.Late && queueConfusable[ev.Type] && !alone {
		// A camera that joined after the detection, alarming from a queue: its frames are the queue's
		// vehicles standing anywhere in its view (up to 100 m from its junction, wherever the queue has
		// grown to), not the blockage the incident was placed at (issue 12, tenth pass: in spider a
		// camera's hundreds of frames of the queue carried two incidents, each placed by a call 70-145 m
		// from its closure, 304 and 354 m away). One vehicle standing alone in its view still places it.
		pw = 0
	} else if in.Status != "" && trafficKind(ev) && placedByNamed(in) {
		// A detected incident that a caller or a camera placed stays where they saw the event: traffic
		// judgements after the detection join it (its score, its links, its affected area) but do not carry
		// it along the queue, nor to the head of another queue downstream (issue 12, eleventh pass: incidents
		// placed by their calls 7-145 m from their closures were carried 444-675 m away by queues that
		// joined them minutes later, so the closure they were detected for counted as not found).
		pw = 0
	} else if ev.LinkRef > 0 && in.Status != "" {
		// A queue link's judgements never place the incident, its first or any later one (issue 12, session
		// 13: in Nanchang the later judgements of links taken as a closure's queue, 130-850 m upstream, carried
		// its incident 400 m away); the queue's head found further on moves it there.
		switch rel {
		case relNone:
			// A link joined by distance only, a road nearby that meets none of its links within queueHops:
			// more evidence of it, but not where it stands (issue 12, session 14: in Bologna such alarms
			// 150-300 m away carried detected incidents 100 m off their closures, onto later ones).
			if len(in.links) > 0 {
				pw = 0
			}
		case relQueue:
			pw = 0
		case relOwn:
			if !headLinks(in)[ev.LinkRef-1] {
				pw = 0
			}
		case relHead:
			for _, o := range in.sources {
				o.SumLat, o.SumLng, o.SumW, o.PosW = 0, 0, 0, 0
			}
		}
	}
	if ev.LinkRef > 0 && !weak {
		li := ev.LinkRef - 1
		if in.links == nil {
			in.links = map[int32]bool{}
		}
		if in.heads == nil {
			in.heads = map[int32]bool{}
		}
		switch {
		case rel == relNone && (in.Status == "" || len(in.links) == 0):
			// Its first link (relate relates no link to an incident without links), or one a candidate joined
			// by distance.
			in.heads[li] = true
		case rel == relHead:
			clear(in.heads)
			in.heads[li] = true
		}
		in.links[li] = true
	}
	if pw > 0 {
		sa.SumLat += pw * ev.Lat
		sa.SumLng += pw * ev.Lng
		sa.SumW += pw
		sa.PosW = math.Max(sa.PosW, pw)
		in.Lat, in.Lng = position(in.sources)
	}
	if c, err := geo.CellOf(in.Lat, in.Lng, geo.Res(ev.Cell)); err == nil {
		in.Cell = c
	}
	in.EvidenceCount++
	in.Evidence = append(in.Evidence, EvidenceRef{Kind: ev.Kind.String(), ID: ev.Source, Type: ev.Type, TS: ev.TS, Weight: round3(w), Cell: ev.Cell, doubt: doubt, ties: ties, stood: stood})
	if len(in.Evidence) > maxEvidence {
		// Drop the oldest of the newest, never the first: an operator or a planner asks what raised it.
		in.Evidence = slices.Delete(in.Evidence, firstEvidence, firstEvidence+len(in.Evidence)-maxEvidence)
	}
	if ev.TS > in.LastEvidenceAt && !weak {
		in.LastEvidenceAt = ev.TS
	}
	if ev.TS > in.UpdatedAt {
		in.UpdatedAt = ev.TS
	}
	if ev.TS < in.FirstEvidenceAt {
		in.FirstEvidenceAt = ev.TS
	}
	if ev.Sev > 0 && int(ev.Sev) > in.ReportSeverity {
		in.ReportSeverity = int(ev.Sev)
	}
	t.rescore(in, ev.TS)
}

// tie records which of the incident's judged links and cameras are about one road once ev (of source key,
// accumulated in sa) has joined it, and returns the pairs it tied (link source, camera source; or two
// cameras, both ways). A camera's frames are about the links under them (within flowNearM, as the judge's
// doubt reads them). A judged link is about the frames' road when it is one of those links or lies ahead of
// them within queueHops downstream: the frames' standing vehicles are in its queue. A link only upstream of
// them, the frames' own links not judged suspicious, is traffic held behind the junction the camera watches,
// not by what it sees: an obstacle holds the traffic on its own link first (issue 12, session 12). Two
// cameras are about one road when links under their frames are joined within queueHops (the relation by
// which the tracker follows a queue from link to link); a frame on no link is about no road.
func (t *tracker) tie(in *Incident, key string, sa *sourceAcc, ev Evidence) (ties [][2]string) {
	switch {
	case ev.LinkRef > 0:
		sa.Link = ev.LinkRef
		for k, o := range in.sources {
			if o.Kind == schema.KindVideo && !slices.Contains(sa.TiedTo, k) && t.ahead(ev.LinkRef-1, linkSet(o.Links)) {
				sa.TiedTo = append(sa.TiedTo, k)
				ties = append(ties, [2]string{key, k})
			}
		}
		slices.Sort(sa.TiedTo)
	case ev.Kind == schema.KindVideo:
		var fresh []int32
		for _, c := range t.topo.net.Nearest(ev.Lat, ev.Lng, flowNearM, 4) {
			if li, ok := t.topo.index[c.Link]; ok && !slices.Contains(sa.Links, li) && len(sa.Links) < maxViewLinks {
				sa.Links = append(sa.Links, li)
				fresh = append(fresh, li)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		set := linkSet(fresh)
		for k, o := range in.sources {
			switch {
			case k == key:
			case o.Link > 0:
				if !slices.Contains(o.TiedTo, key) && t.ahead(o.Link-1, set) {
					o.TiedTo = append(o.TiedTo, key)
					slices.Sort(o.TiedTo)
					ties = append(ties, [2]string{k, key})
				}
			case o.Kind == schema.KindVideo:
				// A frame on no link (farther than flowNearM from every road) is about no road: it
				// corroborates no other camera, as it corroborates no candidate.
				if !slices.Contains(sa.TiedTo, k) && slices.ContainsFunc(o.Links, func(li int32) bool { return t.joined(li, set) }) {
					sa.TiedTo = append(sa.TiedTo, k)
					o.TiedTo = append(o.TiedTo, key)
					slices.Sort(sa.TiedTo)
					slices.Sort(o.TiedTo)
					ties = append(ties, [2]string{key, k}, [2]string{k, key})
				}
			}
		}
	}
	slices.SortFunc(ties, func(a, b [2]string) int { return strings.Compare(a[0]+"|"+a[1], b[0]+"|"+b[1]) })
	return ties
}

// maxViewLinks bounds the links kept under one camera's frames (a camera sees one junction's approaches).
const maxViewLinks = 32

// joined reports whether link li is one of set (linkSet) or lies within queueHops up- or downstream of one.
func (t *tracker) joined(li int32, set map[int32]bool) bool {
	if len(set) == 0 {
		return false
	}
	return set[li] || t.topo.reaches(li, set, queueHops) || t.topo.reachedFrom(li, set, queueHops)
}

// ahead reports whether link li is one of set (linkSet) or lies within queueHops downstream of one: where
// the queue whose vehicles stand on a link of set is held.
func (t *tracker) ahead(li int32, set map[int32]bool) bool {
	return set[li] || t.topo.reachedFrom(li, set, queueHops)
}

// linkSet is links as a set (joined).
func linkSet(links []int32) map[int32]bool {
	set := make(map[int32]bool, len(links))
	for _, l := range links {
		set[l] = true
	}
	return set
}

// trafficKind reports whether ev is a traffic symptom (the blockage judge's link judgements, probe or loop
// anomalies), as opposed to something a person or a camera saw at a place.
func trafficKind(ev Evidence) bool {
	return ev.LinkRef > 0 || ev.Kind == schema.KindProbe || ev.Kind == schema.KindDetector
}

// placedByNamed reports whether a caller, a camera or a fixed sensor places the incident (a source of theirs
// with a position weight). A sensor stands where it measures: traffic queues around its reading are not where
// it is (issue 12, session 14: in the demo city a flood sensor's incident took a queue's alarm 400 m off as
// its first link and was moved onto it, so the sensor's next readings made a second incident).
func placedByNamed(in *Incident) bool {
	for _, sa := range in.sources {
		if (sa.Kind == schema.KindReport || sa.Kind == schema.KindVideo || sa.Kind == schema.KindSensor) && sa.SumW > 0 {
			return true
		}
	}
	return false
}

// position is the mean of the sources' places weighted by their position weights, summed in the order of the
// sources' keys (deterministic whatever order the map iterates in). Callers ensure one source has a weight.
func position(sources map[string]*sourceAcc) (lat, lng float64) {
	keys := make([]string, 0, len(sources))
	for k, sa := range sources {
		if sa.SumW > 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var sw float64
	for _, k := range keys {
		sa := sources[k]
		lat += sa.PosW * sa.SumLat / sa.SumW
		lng += sa.PosW * sa.SumLng / sa.SumW
		sw += sa.PosW
	}
	return lat / sw, lng / sw
}

// nearest returns the open incident or candidate that ev belongs to, or nil: for a traffic judgement on a
// link, one whose links it shares, else one it is the queue or the head of (relate), else the nearest within
// mergeM.
func (t *tracker) nearest(ev Evidence) *Incident {
	var best, related *Incident
	bestD := mergeM
	p := geo.LatLng{Lat: ev.Lat, Lng: ev.Lng}
	li := ev.LinkRef - 1
	for i := len(t.order) - 1; i >= 0; i-- {
		in := t.order[i]
		if in.Status == StatusCleared || in.Status == StatusDismissed {
			continue
		}
		// Event-time windows, so the answer does not depend on when the tracker last ran: a candidate takes
		// evidence until CandidateTTL after its last, an incident until QuietMs after (then it is over).
		window := int64(QuietMs)
		if in.Status == "" {
			window = CandidateTTL
		}
		if ev.TS > in.LastEvidenceAt+window || ev.TS < in.FirstEvidenceAt-window {
			continue
		}
		if named(ev) && in.DetectedAt > 0 && ev.TS-in.DetectedAt > namedJoinMs &&
			(in.types[ev.Type] == 0 || ev.TS-lastNamed(in, ev.Type) > namedJoinMs) {
			// A camera or a caller naming a cause at a place that has been an incident for a while, of
			// other causes, or of that cause but not named for as long, is a new event there (a stalled car
			// at a junction whose queue was already an incident, a second closure near an old one whose
			// calls ended), not more of the old one: joining would hide it under the old detection.
			continue
		}
		// A camera already feeding a detected incident keeps feeding it: its frames are of one scene in its
		// view, and since a late camera's queue frames no longer move the incident (tracker.add), they may
		// lie farther than mergeM from where it stays.
		if ev.Kind == schema.KindVideo && in.Status != "" && in.sources[sourceKey(ev.Kind.String(), ev.Source)] != nil {
			return in
		}
		// A judgement on a link joins the detected incident whose own link it is, else the newest detected
		// one whose queue or head it is (relate), else a candidate whose own link it is: a queue link of one
		// incident that lies downstream of a newer one's head is the older one's queue, not the newer one's
		// head found further on (issue 12, session 13: in grid a closure's incident was carried 314 m onto
		// another incident's queue link 20 s after it was detected), and a detected incident's queue is not
		// a suspicion that was there before it.
		rel := t.relate(in, li, ev.TS)
		d := geo.DistanceM(p, geo.LatLng{Lat: in.Lat, Lng: in.Lng})
		if ev.LinkRef > 0 && !ev.Squeeze && rel != relOwn && (rel != relQueue || d > mergeM) && squeezeOnly(in) {
			// The blockage judge's word on another link than a squeeze's, not its queue close behind it:
			// traffic passes the squeezed point, so what holds traffic elsewhere is another event (issue 12,
			// session 18: in spider a full closure's alarm 750 m away, three links upstream of a partial
			// closure's squeeze, was taken as its queue and the full closure was lost).
			continue
		}
		if ev.Squeeze && rel != relOwn && !squeezeOnly(in) && !placedByNamed(in) {
			// The squeeze judge's word does not join an incident the blockage judge placed on other links:
			// traffic passes the squeezed point and is back to speed past it, so it is not that incident's
			// queue, nor the same event beside it (issue 12, session 19: in grid a partial closure's
			// squeezes 300 m from a full closure's incident, still open on its queue's links, joined it, kept
			// it open and the partial closure was never an incident of its own). It joins one a caller or a
			// camera placed near it (they saw the event there), its own link's, or another squeeze's.
			continue
		}
		switch {
		case rel == relOwn && in.Status != "":
			return in
		case rel != relNone && (related == nil || related.Status == "" && in.Status != ""):
			related = in
		}
		if d <= bestD {
			best, bestD = in, d
		}
	}
	if related != nil {
		return related
	}
	return best
}

// relation is how a traffic judgement's link stands to an incident's links (tracker.relate).
type relation int

const (
	relNone  relation = iota // none: the judgement joins by distance, if at all
	relOwn                   // one of the incident's links (a head or its queue)
	relQueue                 // upstream of its links within queueHops: its queue spilling back
	relHead                  // the queue's head found further on (relate)
	relDrain                 // upstream of its links that flow again since at most drainMs: its queue draining
)

// relate is how a traffic judgement on link li stands to incident in. A candidate (never detected) is a
// suspicion, not a queue to follow: only its own links relate to it. A detected incident's queue grows
// upstream: a link within queueHops upstream of any of its links that still stands, its queue links included,
// is its queue. A link the judge last found flowing holds no queue behind it: an alarm upstream of it is not
// this incident's queue spilling back but a new event (issue 12, session 14: in spider and Nanchang incidents
// whose own roads flowed again took later closures' alarms 3 hops upstream as their queue, 5-23 minutes after
// they were detected, and the closures were never reported).
// Downstream the incident is its head, the blocked point: a link within queueHops downstream of a head may
// be where the queue is really held (the first alarm is often on a feeder the queue spilled onto) when it
// is judged within headFoundMs of the detection; later, the blocked link's own judgement would have come
// long before, and an alarm there is a new event. Downstream of a
// queue link, through another branch of its junction, is not the incident's queue at all (issue 12, session
// 13: in Nanchang one incident took its closure's queue links, then through their junctions' other
// branches the alarms of two later closures 600-1000 m away, 18 and 26 minutes after it was detected, and
// moved to them: three closures lost, one false alarm).
func (t *tracker) relate(in *Incident, li int32, ts int64) relation {
	switch {
	case li < 0 || t.topo == nil || len(in.links) == 0:
		return relNone
	case in.links[li]:
		return relOwn
	case in.Status == "":
		return relNone
	case t.topo.reaches(li, t.standing(in), queueHops):
		return relQueue
	case t.topo.reachedFrom(li, headLinks(in), queueHops) && ts-max(in.DetectedAt, in.FirstEvidenceAt) <= headFoundMs:
		return relHead
	case t.topo.reaches(li, t.draining(in, ts), queueHops):
		return relDrain
	}
	return relNone
}

// draining is the links of an incident whose road flows again, but began to at most drainMs before ts: its
// queue upstream still drains (relate). An alarm there is held as the incident's queue without becoming one
// of its links or keeping it open, so it opens no incident of its own while the queue drains, and once the
// window has passed an alarm there is a new event (issue 12, session 17: in grid at 5 % a closure's queue one
// link upstream of its road alarmed 6 minutes after the closure ended, 60 s after the road flowed again, and
// was a false alarm).
func (t *tracker) draining(in *Incident, ts int64) map[int32]bool {
	var out map[int32]bool
	for l := range in.links {
		if lf := t.flow[l]; lf.flows() && ts-lf.Since <= drainMs {
			if out == nil {
				out = map[int32]bool{}
			}
			out[l] = true
		}
	}
	return out
}

// aftermath reports whether traffic judgement ev, which no open incident takes, is on a link whose judgements were
// joining an incident when it cleared (or its quiet wait ended), at most drainMs before ev: that incident's
// aftermath (its queue still draining, the traffic it pushed onto the roads nearby finding its way back), not a new
// event, so it opens no candidate of its own. A link the incident never took a judgement from, or the same link
// later than drainMs after the clearance, opens one as before. (Issue 12, session 18: in Bologna a closure's
// call-placed incident cleared by its quiet wait 2 s before the road reopened while the judge's candidates on a road
// beside it had been joining it for 40 s; 4 s later the same links' judgements opened a second incident, detected
// 30 s later, a duplicate of the closure in both probe shares.)
func (t *tracker) aftermath(ev Evidence) bool {
	if !trafficKind(ev) || ev.LinkRef <= 0 {
		return false
	}
	li := ev.LinkRef - 1
	for _, in := range t.order {
		// When it cleared; an active incident whose quiet wait has passed at ev (no evidence can join it any
		// more) clears at the next advance.
		var over int64
		switch {
		case in.Status == StatusCleared:
			over = in.ClearedAt
		case in.Active() && ev.TS-in.LastEvidenceAt > QuietMs:
			over = in.LastEvidenceAt + QuietMs
		default:
			continue
		}
		if ev.TS < over || ev.TS-over > drainMs {
			continue
		}
		if in.links[li] {
			return true
		}
		if sa := in.sources[sourceKey(ev.Kind.String(), ev.Source)]; sa != nil && sa.Last >= over-drainMs {
			return true
		}
	}
	return false
}

// standing is the links of an incident its queue may still spill back from: those whose latest word from the
// judge is not "flowing" (relate).
func (t *tracker) standing(in *Incident) map[int32]bool {
	out := make(map[int32]bool, len(in.links))
	for l := range in.links {
		if !t.flow[l].flows() {
			out[l] = true
		}
	}
	return out
}

// headLinks is an incident's heads, or all its links when it has none (a snapshot from before heads).
func headLinks(in *Incident) map[int32]bool {
	if len(in.heads) > 0 {
		return in.heads
	}
	return in.links
}

// lastNamed is the time of the newest evidence kept on in that named cause typ (0: none kept).
func lastNamed(in *Incident, typ string) int64 {
	for i := len(in.Evidence) - 1; i >= 0; i-- {
		e := &in.Evidence[i]
		if e.Type == typ && (e.Kind == schema.KindVideo.String() || e.Kind == schema.KindReport.String()) {
			return e.TS
		}
	}
	return 0
}

// named reports whether ev names a cause of its own (a camera's or a caller's incident type), as opposed to
// a symptom (traffic) or a reading (sensors, transit).
func named(ev Evidence) bool {
	return (ev.Kind == schema.KindVideo || ev.Kind == schema.KindReport) && ev.Type != ""
}

// rescore fuses the sources (noisy-OR over distinct sources; repeated detections by one source raise its
// weight a little) and moves the incident through suspected and confirmed.
func (t *tracker) rescore(in *Incident, ts int64) {
	in.Score = fuse(in.sources, blocking(in.types), t.topo != nil)
	var bestT string
	var bestW float64
	for typ, w := range in.types {
		if w > bestW || (w == bestW && typ < bestT) {
			bestT, bestW = typ, w
		}
	}
	if bestT == "speed_collapse" && len(in.types) > 1 {
		// A named cause beats the traffic symptom.
		var second string
		var sw float64
		for typ, w := range in.types {
			if typ != "speed_collapse" && (w > sw || (w == sw && typ < second)) {
				second, sw = typ, w
			}
		}
		bestT = second
	}
	if bestT == "speed_collapse" {
		bestT = "congestion_anomaly"
	}
	in.Type = bestT
	in.Severity = severityOf(in)
	if in.Operator {
		return
	}
	if in.Status == "" && in.Score >= DetectScore {
		in.Status = StatusSuspected
		in.DetectedAt = detectionTime(in, ts, t.topo != nil)
	}
	if in.Status == StatusSuspected && in.Score >= ConfirmScore {
		in.Status = StatusConfirmed
	}
}

// fuse is the incident score of a set of sources: a noisy-OR over distinct sources, where repeated
// detections by one source raise its weight a little. Independent kinds of evidence (camera and traffic, say)
// corroborate each other. The blockage detector's judgements of the links of one queue are not independent:
// the strongest of them counts, with its weight as the detector's model and persistence set it. Nor are
// cameras doubted for a moving queue (their road judged flowing, or their counts as usual): the strongest of
// them counts. One source
// alone however often it repeats, or traffic data alone, stays below automatic confirmation: that takes a
// second kind, a second camera or caller, or an operator. The result does not depend on the order the
// evidence came in.
//
// A traffic candidate (a link the detector finds suspicious but not yet blocked) corroborates only a named
// cause that blocks a road (blocked: a crash, a stalled vehicle, debris, a closure or hazard called in): a
// camera's wrong-way driver next to an ordinary queue is not a blockage; and only when some evidence other
// than cameras doubted for a moving queue is there: such a camera and a suspicious queue beside it are the
// same ordinary congestion (issue 12, tenth pass); a camera's frame that names no obstacle (a pedestrian, a
// wrong-way driver) is no such other evidence: it says nothing of a blockage (issue 12, eleventh pass); nor is
// a camera whose frames do not stand in the candidate's queue (tracker.tie): a suspicious link 100-350 m off
// on a road that does not reach the camera's junction is another queue (issue 12, session 11: in Hangzhou's
// dense junction clusters such pairs made false alarms), and one only upstream of the frames is traffic held
// behind the camera's junction, not by what it sees (session 12); nor is a camera whose newest frame came
// more than frameAtOnce before the candidate's newest judgement (stillSeen): its scene was gone when the link
// turned suspicious (session 12: a planted debris frame and a candidate on its road 158 s later made a
// Hangzhou false alarm).
func fuse(sources map[string]*sourceAcc, blocked, roads bool) float64 {
	miss := 1.0
	kinds := map[schema.Kind]bool{}
	traffic := 0.0
	// Cameras short of counting in full (unrepeated, or doubted for a moving queue), by the scene they name.
	type claim struct {
		key   string
		w     float64
		last  int64
		doubt bool
		road  []string // the cameras whose frames are on its road (TiedTo)
	}
	claims := map[string][]claim{}
	// What lets a candidate corroborate: a source other than the judge that is not a camera (a caller, a
	// sensor), or a camera seeing an obstacle, not doubted, whose frames are on the candidate's road (tie).
	named, cams := false, map[string]bool{}
	for key, sa := range sources {
		switch {
		case linkSource(key):
		case sa.Kind == schema.KindVideo:
			if !sa.Doubt && sa.sees(obstacle) {
				cams[key] = true
			}
		default:
			named = true
		}
	}
	for key, sa := range sources {
		if linkSource(key) {
			if sa.Weight >= DetectScore || blocked && (named || slices.ContainsFunc(sa.TiedTo, func(c string) bool { return cams[c] && stillSeen(sources[c].Last, sa.Last) })) {
				traffic = math.Max(traffic, sa.Weight)
				kinds[sa.Kind] = true
			}
			continue
		}
		kinds[sa.Kind] = true
		w := math.Min(maxSourceW, sa.Weight+sourceRepeat*float64(sa.N-1))
		switch {
		case sa.Kind == schema.KindTransit:
			w = math.Min(w, 0.35) // supporting evidence only
		case sa.Kind == schema.KindVideo && (sa.repeats() < videoRepeats || sa.Doubt),
			(sa.Kind == schema.KindProbe || sa.Kind == schema.KindDetector) && sa.N < trafficRepeats:
			// A classifier's frame until it repeats, or a cell's traffic anomaly that has not yet outlasted
			// a signal cycle or two, is a candidate until something else corroborates it.
			w = math.Min(w, unrepeatedCap)
			if sa.Kind == schema.KindVideo {
				sc := sa.scene()
				claims[sc] = append(claims[sc], claim{key, w, sa.Last, sa.Doubt, sa.TiedTo})
				continue
			}
		}
		miss *= 1 - w
	}
	// Frames that have not repeated corroborate each other only when they name one scene: a wrong-way
	// driver at one camera and debris or a pedestrian at the next are two different claims, each one frame
	// of a classifier that makes such mistakes, not two sightings of one event (issue 12, eleventh pass:
	// three of Hangzhou's five all-evidence false alarms were such frames of two cameras 93-249 m apart, where
	// cameras stand at junctions close together). The best-supported scene counts.
	//
	// Nor do they corroborate each other unless seen at once: a camera that still sees a scene reports it
	// again within frameAtOnce (a standing vehicle's alarm repeats every minute), so one whose last frame
	// of the scene is older than that before another camera's newest no longer says it is there, and counts
	// as itself only (issue 12, session 11: in Hangzhou's c4 seed 3 two cameras' debris frames 305 s apart,
	// each a classifier's mistake, made a false alarm at both probe shares).
	//
	// Nor unless they could be of one thing: frames of cameras on roads that do not meet within queueHops
	// (tracker.tie; with a road network) are of two things, as a candidate on another road is.
	//
	// So each camera a, with the cameras of its scene seen at once with it (their newest frame at most
	// frameAtOnce older than a's) on its road, is a group: its undoubted cameras combine, and cameras doubted
	// for a moving queue (the judge finds their road flowing, or they count vehicles through as usual) are
	// explained by the same ordinary congestion, not independent: together they say no more than the
	// strongest of them. The best-supported group counts.
	scenes := 0.0
	for _, cs := range claims {
		for _, a := range cs {
			miss, doubted := 1.0, 0.0
			for _, c := range cs {
				if c.key != a.key && (roads && !slices.Contains(a.road, c.key) ||
					a.last != 0 && c.last != 0 && (c.last > a.last || c.last < a.last-frameAtOnce)) {
					continue
				}
				if c.doubt {
					doubted = math.Max(doubted, c.w)
				} else {
					miss *= 1 - c.w
				}
			}
			scenes = math.Max(scenes, 1-miss*(1-doubted))
		}
	}
	miss *= (1 - traffic) * (1 - scenes)
	score := 1 - miss
	if len(kinds) >= 2 {
		score = math.Min(1, score+0.05*float64(len(kinds)-1))
	} else if len(sources) == 1 || kinds[schema.KindProbe] || kinds[schema.KindDetector] {
		score = math.Min(score, singleKindCap)
	}
	return round3(score)
}

// stillSeen reports whether a camera whose newest frame came at frame still saw its scene when the judge last
// found a link suspicious, at judged (event times; 0: unknown, from a snapshot from before they were kept): a
// camera watches all the time and reports a scene still there again within frameAtOnce, so a frame older
// than that says the scene is gone (or never was). Not the other way round: the judge judges a link only
// when probes report on it (at 5 % a link may go minutes without a fix), so a candidate not judged again is
// still its last word on the link.
func stillSeen(frame, judged int64) bool {
	return frame == 0 || judged == 0 || frame >= judged-frameAtOnce
}

// blockingTypes are the named causes that block a road.
var blockingTypes = []string{"crash", "stalled_vehicle", "debris", "road_closure", "hazard"}

// blocking reports whether types hold a cause that blocks a road.
func blocking(types map[string]float64) bool {
	for _, t := range blockingTypes {
		if types[t] > 0 {
			return true
		}
	}
	return false
}

// sourceKey is the key of an incident's source: its kind of evidence and its id (a camera, a caller,
// "link:N" for the blockage judge's link N).
func sourceKey(kind, id string) string { return kind + ":" + id }

// linkSource reports whether a source key ("kind:source") is the blockage detector's judgement of a link.
func linkSource(key string) bool { return strings.Contains(key, ":link:") }

// squeezeOnly reports whether the squeeze judge (blockageJudge.squeezeEvidence, source "squeeze:LINK") is the
// only traffic judgement an incident holds: a point where a lane is closed and traffic passes, no queue.
func squeezeOnly(in *Incident) bool {
	sq := false
	for key := range in.sources {
		switch {
		case linkSource(key):
			return false
		case strings.Contains(key, ":squeeze:"):
			sq = true
		}
	}
	return sq
}

// detectionTime is the event time at which the incident's evidence, taken in event-time order, first reached
// DetectScore: the same whatever order the evidence arrived in.
func detectionTime(in *Incident, fallback int64, roads bool) int64 {
	ev := append([]EvidenceRef(nil), in.Evidence...)
	sort.SliceStable(ev, func(i, j int) bool {
		if ev[i].TS != ev[j].TS {
			return ev[i].TS < ev[j].TS
		}
		return ev[i].Kind+ev[i].ID < ev[j].Kind+ev[j].ID
	})
	acc := map[string]*sourceAcc{}
	types := map[string]float64{}
	tied := map[string][]string{}
	for _, e := range ev {
		types[e.Type]++
		key := sourceKey(e.Kind, e.ID)
		sa := acc[key]
		if sa == nil {
			sa = &sourceAcc{Kind: schema.ParseKind(e.Kind), TiedTo: tied[key]}
			acc[key] = sa
		}
		for _, p := range e.ties {
			tied[p[0]] = append(tied[p[0]], p[1])
			if o := acc[p[0]]; o != nil {
				o.TiedTo = tied[p[0]]
			}
		}
		sa.N++
		sa.Last = max(sa.Last, e.TS)
		if sa.Kind == schema.KindVideo {
			sa.seen(e.Type)
			if e.stood > 0 {
				sa.Stalls++
				sa.Stood = max(sa.Stood, e.stood)
			}
		}
		sa.doubt(e.doubt)
		sa.Weight = math.Max(sa.Weight, e.Weight)
		if fuse(acc, blocking(types), roads) >= DetectScore {
			return e.TS
		}
	}
	return fallback
}

// severityOf estimates severity 1..5 from the type and the affected area.
func severityOf(in *Incident) int {
	s := 2
	switch in.Type {
	case "crash", "fire", "wrong_way":
		s = 3
	case "pedestrian", "flood":
		s = 3
	}
	switch n := len(in.Affected); {
	case n >= 8:
		s += 2
	case n >= 3:
		s++
	}
	return max(min(5, s), in.ReportSeverity)
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func strconvBase36(n int64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	if n <= 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append(b, digits[n%36])
		n /= 36
	}
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// advance runs the time-driven part up to the watermark wm (event time that no more on-time evidence can
// precede): the affected area, clearance, expiry of candidates that never reached detection, and forgetting
// old ended incidents. Driven by the watermark rather than the wall clock, it gives the same incidents
// however the log is fed (live, restarted or replayed at any speed).
func (t *tracker) advance(wm int64) (changed bool) {
	t.advancedTo = max(t.advancedTo, wm)
	keep := t.order[:0]
	for _, in := range t.order {
		switch {
		case in.Status == "":
			if wm-in.LastEvidenceAt > CandidateTTL {
				t.judgeCams(in, false, in.LastEvidenceAt+CandidateTTL)
				delete(t.byID, in.ID)
				continue
			}
		case in.Active():
			if aff := affectedCells(in, wm); !slices.Equal(aff, in.Affected) {
				in.Affected = aff
				in.Severity = severityOf(in)
				changed = true
			}
			// Traffic evidence keeps coming while the anomaly lasts, cameras and callers while the scene is
			// there: a quiet incident is over.
			if wm-in.LastEvidenceAt > QuietMs {
				// Over: the queue dissolved, the stalled vehicle left the camera's view, the calls ended.
				in.Status = StatusCleared
				in.ClearedAt = clearedAt(in, t.recoveredAt(in))
				in.UpdatedAt = in.ClearedAt
				in.Affected = nil
				t.judgeCams(in, true, in.ClearedAt)
				changed = true
			}
		default:
			if wm-in.UpdatedAt > historyMs {
				delete(t.byID, in.ID)
				continue
			}
		}
		keep = append(keep, in)
	}
	clear(t.order[len(keep):])
	t.order = keep
	return changed
}

// clearedAt is when a quiet incident cleared (issue 12: "a cleared time when traffic recovers"). When the
// judge found its road flowing again after its last evidence (recovered; 0: not seen), then. Otherwise, when
// its last evidence was a camera's frame, at that frame: a camera repeats its alarm every minute the scene is
// in view, so it stopped seeing it. Otherwise (a call, which comes once, minutes into a closure, and says
// nothing of its end; traffic evidence and then no probe on its road), when the wait for more evidence
// ended. Before, every incident was shown cleared at its last evidence: on the corpus 40 of 102 detected
// blockages over a minute before the road reopened (5 minutes for calls alone).
func clearedAt(in *Incident, recovered int64) int64 {
	waited := in.LastEvidenceAt + QuietMs
	if recovered > 0 {
		return min(recovered, waited)
	}
	for i := len(in.Evidence) - 1; i >= 0; i-- {
		if e := &in.Evidence[i]; e.TS == in.LastEvidenceAt && e.Kind == schema.KindVideo.String() {
			return in.LastEvidenceAt
		}
	}
	return waited
}

// affectedCells are the cells whose traffic collapsed as part of the incident in the last affectSpan of
// event time: the queue, growing and shrinking with it.
func affectedCells(in *Incident, wm int64) []uint64 {
	var out []uint64
	for _, e := range in.Evidence {
		if e.Type == "speed_collapse" && e.TS >= wm-affectSpanMs && e.Cell != 0 && !slices.Contains(out, e.Cell) {
			out = append(out, e.Cell)
		}
	}
	slices.Sort(out)
	return out
}

// judgeCams credits or debits the cameras that reported evidence on an incident that has ended.
func (t *tracker) judgeCams(in *Incident, real bool, at int64) {
	for key, sa := range in.sources {
		if sa.Kind != schema.KindVideo {
			continue
		}
		c := t.cams[strings.TrimPrefix(key, "video:")]
		if c == nil {
			continue
		}
		corroborated := real && (len(in.sources) > 1 || in.Status == StatusConfirmed || in.Operator)
		if in.Status == StatusDismissed {
			corroborated = false
		}
		c.Pending = append(c.Pending, camJudgement{At: at, N: sa.N, Good: corroborated})
		if len(c.Pending) > 256 {
			c.settle(c.Pending[len(c.Pending)-1].At) // bounded: settle the oldest early
		}
	}
}

// apply carries out an operator action. It returns an error naming what is wrong.
func (t *tracker) apply(a Action) error {
	in := t.byID[a.IncidentID]
	if in == nil || in.Status == "" {
		return fmt.Errorf("cannot change incident %s: no such incident", a.IncidentID)
	}
	switch a.Status {
	case StatusConfirmed, StatusDismissed, StatusCleared:
	default:
		return fmt.Errorf("cannot change incident %s to %q: use confirmed, dismissed or cleared", a.IncidentID, a.Status)
	}
	if !in.Active() && a.Status != in.Status {
		return fmt.Errorf("cannot change incident %s: it is already %s", a.IncidentID, in.Status)
	}
	in.Audit = append(in.Audit, AuditEntry{TS: a.TS, By: a.By, Role: a.Role, Status: a.Status, Note: a.Note})
	in.Status = a.Status
	in.Operator = true
	if a.Status != StatusConfirmed {
		in.ClearedAt = max(in.LastEvidenceAt, in.UpdatedAt)
		in.Affected = nil
		t.judgeCams(in, a.Status == StatusCleared, in.LastEvidenceAt)
	}
	return nil
}

// scores returns incident scores by cell: an active incident's cell gets its score, its affected cells half.
func (t *tracker) scores() map[uint64]float64 {
	out := map[uint64]float64{}
	for _, in := range t.order {
		if !in.Active() {
			continue
		}
		for _, c := range in.Affected {
			out[c] = math.Max(out[c], round3(in.Score/2))
		}
		out[in.Cell] = math.Max(out[in.Cell], in.Score)
	}
	return out
}

// snapshot copies the visible incidents (detected at some point).
func (t *tracker) snapshot() []Incident {
	out := make([]Incident, 0, len(t.order))
	for _, in := range t.order {
		if in.Status == "" {
			continue
		}
		cp := *in
		cp.Evidence = append([]EvidenceRef(nil), in.Evidence...)
		cp.Affected = append([]uint64(nil), in.Affected...)
		cp.Audit = append([]AuditEntry(nil), in.Audit...)
		cp.sources, cp.types, cp.links, cp.heads = nil, nil, nil, nil
		out = append(out, cp)
	}
	return out
}
