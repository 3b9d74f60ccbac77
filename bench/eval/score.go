package eval

import (
	"math"
	"sort"
	"time"

	"citybrain/geo"
)

// Match rule: a detection matches a true incident when it lies within MatchRadiusM of it and was detected
// (detected_at, event time) in [start − MatchBefore, end + MatchAfter].
const (
	MatchRadiusM = 300.0
	MatchBefore  = 60 * time.Second
	MatchAfter   = 5 * time.Minute
	// ScoreMargin: a true incident that starts less than this before the end of the fed data cannot be
	// judged (too little time to detect it); it is listed but not scored, and detections matching only it
	// are not false alarms.
	ScoreMargin = 5 * time.Minute
	// FastS is the time to detect that the "from traffic data alone" target asks of full closures, SlowS of
	// partial ones.
	FastS = 180.0
	SlowS = 300.0
)

// Truth is one labelled incident.
type Truth struct {
	ID       string    `json:"id"`
	Class    string    `json:"class"`              // stalled_vehicle, crash (demo); partial_closure, full_closure (SUMO)
	Position string    `json:"position,omitempty"` // mid_block, stop_line, past_junction (SUMO)
	Type     string    `json:"type"`
	Lat      float64   `json:"lat"`
	Lng      float64   `json:"lng"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	// Full: when a full closure became full, its last lane's stop start in SUMO's stop output (nil for other
	// truths). SUMO 1.15 cannot insert a blocker on time on a jammed link, so a closure's lanes may close one
	// by one: until the last does, traffic passes and the blockage is in truth a partial closure. A full
	// closure's 180-s bar counts from here (Metrics.Within180Full); its match window and time to detect still
	// count from Start, its first lane.
	Full         *time.Time `json:"full_at,omitempty"`
	Lanes        int        `json:"lanes"`
	LanesBlocked int        `json:"lanes_blocked"`
	Where        string     `json:"where,omitempty"`  // link or lane
	Link         string     `json:"link,omitempty"`   // the blocked link (SUMO)
	Camera       string     `json:"camera,omitempty"` // a camera that can see it
	// VideoEvidence: the fed events hold an incident-type video detection of it (within 150 m, in
	// [start, end]); false in a variant without video.
	VideoEvidence bool `json:"video_evidence"`
	Reports       int  `json:"reports"` // hotline reports fed about it
	// The earliest evidence each source fed about it, in seconds after its start (nil: none): the first
	// incident-type video detection of it (sawVideo's rule) and the first hotline call.
	FirstVideoS *float64 `json:"first_video_s,omitempty"`
	FirstCallS  *float64 `json:"first_call_s,omitempty"`
}

// Detection is an incident the system reported.
type Detection struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Status     string     `json:"status"`
	Lat        float64    `json:"lat"`
	Lng        float64    `json:"lng"`
	Score      float64    `json:"score"`
	DetectedAt time.Time  `json:"detected_at"`
	ClearedAt  *time.Time `json:"cleared_at,omitempty"`
	Kinds      []string   `json:"evidence_kinds"`
	Matches    []string   `json:"matches,omitempty"` // truth ids
	// Verdict: true_positive (first match of a truth), duplicate (matches a truth already detected earlier),
	// false_alarm, out_of_scope (sensor-only: floods and gas, not lane blockages), unscored (matches only
	// truths too close to the end to score).
	Verdict string `json:"verdict"`
}

// TruthResult is a truth with its outcome.
type TruthResult struct {
	Truth
	Scored    bool     `json:"scored"`
	Detected  bool     `json:"detected"`
	Detection string   `json:"detection,omitempty"`
	TTDS      *float64 `json:"time_to_detect_s,omitempty"`
	// TTDFullS: a full closure's time to detect counted from when it became full (Truth.Full; negative when
	// found before its last lane closed); nil for other truths.
	TTDFullS   *float64 `json:"time_to_detect_from_full_s,omitempty"`
	LocErrM    *float64 `json:"location_error_m,omitempty"`
	DetKinds   []string `json:"detection_evidence_kinds,omitempty"`
	DetScore   float64  `json:"detection_score,omitempty"`
	Detections int      `json:"matching_detections"`
	// ClearLagS: when the last of its matching incidents was cleared, less its end (s; negative: shown
	// cleared while the road was still blocked); nil while one of them is still open at the end of the data,
	// and then OpenAfterS says how long after its end the data ran (clearance.go).
	ClearLagS  *float64 `json:"clear_lag_s,omitempty"`
	OpenAfterS *float64 `json:"open_after_end_s,omitempty"`
}

// Metrics are the scores of a set of truths and detections.
type Metrics struct {
	Truths        int     `json:"truths"`
	Detected      int     `json:"detected"`
	DetectionRate float64 `json:"detection_rate"`
	Within180     int     `json:"detected_within_180s"`
	Within180Rate float64 `json:"detection_rate_within_180s"`
	// Within180Full counts as Within180 does, but a full closure from when it became full (Truth.Full): the
	// count the 180-s bar is judged on. Within180 stays the count from the first lane.
	Within180Full     int     `json:"detected_within_180s_from_full"`
	Within180FullRate float64 `json:"detection_rate_within_180s_from_full"`
	Within300         int     `json:"detected_within_300s"`
	Within300Rate     float64 `json:"detection_rate_within_300s"`
	FalseAlarms       int     `json:"false_alarms"`
	Hours             float64 `json:"simulated_hours"`
	FalseAlarmsPH     float64 `json:"false_alarms_per_hour"`
	MeanTTDS          float64 `json:"mean_time_to_detect_s"`
	MedianTTDS        float64 `json:"median_time_to_detect_s"`
	WorstTTDS         float64 `json:"worst_time_to_detect_s"`
	MeanLocErrM       float64 `json:"mean_location_error_m"`
	WorstLocErrM      float64 `json:"worst_location_error_m"`
	Duplicates        int     `json:"duplicates"`
	OutOfScope        int     `json:"out_of_scope"`
}

// score matches detections against truths. dataEnd is the event time of the last fed data; hours the
// simulated span the false alarms are counted over.
func score(truths []Truth, dets []Detection, dataEnd time.Time, hours float64) ([]TruthResult, []Detection, Metrics) {
	res := make([]TruthResult, len(truths))
	for i, t := range truths {
		res[i] = TruthResult{Truth: t, Scored: !t.Start.After(dataEnd.Add(-ScoreMargin))}
	}
	// Earliest detections first, so each truth's first match is its detection.
	sort.SliceStable(dets, func(i, j int) bool { return dets[i].DetectedAt.Before(dets[j].DetectedAt) })
	for di := range dets {
		d := &dets[di]
		d.Matches = nil
		scoredMatch, firstOf := false, false
		for ti := range res {
			tr := &res[ti]
			if !matches(&tr.Truth, d) {
				continue
			}
			d.Matches = append(d.Matches, tr.ID)
			tr.Detections++
			if tr.Scored {
				scoredMatch = true
			}
			if !tr.Detected {
				tr.Detected = true
				tr.Detection = d.ID
				ttd := d.DetectedAt.Sub(tr.Start).Seconds()
				le := geo.DistanceM(geo.LatLng{Lat: d.Lat, Lng: d.Lng}, geo.LatLng{Lat: tr.Lat, Lng: tr.Lng})
				ttd, le = math.Round(ttd*10)/10, math.Round(le)
				tr.TTDS, tr.LocErrM, tr.DetKinds, tr.DetScore = &ttd, &le, d.Kinds, d.Score
				if tr.Full != nil {
					f := math.Round(d.DetectedAt.Sub(*tr.Full).Seconds()*10) / 10
					tr.TTDFullS = &f
				}
				firstOf = true
			}
		}
		switch {
		case len(d.Matches) == 0 && sensorOnly(d.Kinds):
			d.Verdict = "out_of_scope"
		case len(d.Matches) == 0:
			d.Verdict = "false_alarm"
		case firstOf && scoredMatch:
			d.Verdict = "true_positive"
		case !scoredMatch:
			d.Verdict = "unscored"
		default:
			d.Verdict = "duplicate"
		}
	}
	setClearance(res, dets, dataEnd)
	m := metrics(res, dets, hours)
	return res, dets, m
}

func matches(t *Truth, d *Detection) bool {
	if d.DetectedAt.Before(t.Start.Add(-MatchBefore)) || d.DetectedAt.After(t.End.Add(MatchAfter)) {
		return false
	}
	return geo.DistanceM(geo.LatLng{Lat: d.Lat, Lng: d.Lng}, geo.LatLng{Lat: t.Lat, Lng: t.Lng}) <= MatchRadiusM
}

func sensorOnly(kinds []string) bool {
	if len(kinds) == 0 {
		return false
	}
	for _, k := range kinds {
		if k != "sensor" {
			return false
		}
	}
	return true
}

// metrics sums truths (scored ones) and detections over hours of simulated time.
func metrics(res []TruthResult, dets []Detection, hours float64) Metrics {
	var m Metrics
	var ttds, les []float64
	for _, tr := range res {
		if !tr.Scored {
			continue
		}
		m.Truths++
		if !tr.Detected {
			continue
		}
		m.Detected++
		ttds = append(ttds, *tr.TTDS)
		les = append(les, *tr.LocErrM)
		count(&m, &tr)
	}
	for _, d := range dets {
		switch d.Verdict {
		case "false_alarm":
			m.FalseAlarms++
		case "duplicate":
			m.Duplicates++
		case "out_of_scope":
			m.OutOfScope++
		}
	}
	m.Hours = hours
	fill(&m, ttds, les)
	return m
}

// count adds a detected truth to the counts within 180 s and 300 s.
func count(m *Metrics, tr *TruthResult) {
	if *tr.TTDS <= FastS {
		m.Within180++
	}
	if tr.fromFull() <= FastS {
		m.Within180Full++
	}
	if *tr.TTDS <= SlowS {
		m.Within300++
	}
}

// fromFull is a detected truth's time to detect counted from when it became full (a full closure's
// Truth.Full), else from its start.
func (tr *TruthResult) fromFull() float64 {
	if tr.TTDFullS != nil {
		return *tr.TTDFullS
	}
	return *tr.TTDS
}

// fill sets the rates and the time and location statistics.
func fill(m *Metrics, ttds, les []float64) {
	if m.Truths > 0 {
		m.DetectionRate = round3(float64(m.Detected) / float64(m.Truths))
		m.Within180Rate = round3(float64(m.Within180) / float64(m.Truths))
		m.Within180FullRate = round3(float64(m.Within180Full) / float64(m.Truths))
		m.Within300Rate = round3(float64(m.Within300) / float64(m.Truths))
	}
	if m.Hours > 0 {
		m.FalseAlarmsPH = round3(float64(m.FalseAlarms) / m.Hours)
	}
	m.MeanTTDS, m.MedianTTDS, m.WorstTTDS = stats(ttds)
	m.MeanLocErrM, _, m.WorstLocErrM = stats(les)
	m.MeanLocErrM, m.WorstLocErrM = math.Round(m.MeanLocErrM), math.Round(m.WorstLocErrM)
}

// stats returns mean, median and maximum (0s for none).
func stats(xs []float64) (mean, median, worst float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	mean = sum / float64(len(s))
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return math.Round(mean*10) / 10, math.Round(median*10) / 10, s[len(s)-1]
}

// merge sums the metrics of several scored runs (truth results and detections together).
func merge(runs []*Scenario, keep func(*Scenario, *TruthResult) bool, keepFA func(*Scenario) bool) Metrics {
	var m Metrics
	var ttds, les []float64
	for _, sc := range runs {
		for i := range sc.Truths {
			tr := &sc.Truths[i]
			if !tr.Scored || !keep(sc, tr) {
				continue
			}
			m.Truths++
			if tr.Detected {
				m.Detected++
				ttds = append(ttds, *tr.TTDS)
				les = append(les, *tr.LocErrM)
				count(&m, tr)
			}
		}
		if keepFA(sc) {
			m.FalseAlarms += sc.Metrics.FalseAlarms
			m.Duplicates += sc.Metrics.Duplicates
			m.OutOfScope += sc.Metrics.OutOfScope
			m.Hours += sc.Metrics.Hours
		}
	}
	m.Hours = round3(m.Hours)
	fill(&m, ttds, les)
	return m
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
