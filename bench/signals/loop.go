package signals

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"citybrain/ingest/sumo/traci"
)

// FeedOptions are the feeds a city has, as the closed loop produces them from SUMO.
type FeedOptions struct {
	ProbeShare  float64 // share of vehicles reporting as probes (0.15)
	ProbeEveryS float64 // each reports this often (5 s)
	NoiseM      float64 // GPS noise, standard deviation in metres (3 m)
	LoopGapS    float64 // loops sit this many seconds of free-flow travel before the stop line (2 s, as SUMO's actuated)
}

// DefaultFeed is the city: 15 % probes every 5 s with 3 m noise, loops where SUMO's actuated has them.
func DefaultFeed() FeedOptions {
	return FeedOptions{ProbeShare: 0.15, ProbeEveryS: 5, NoiseM: 3, LoopGapS: 2}
}

// FeedStats counts what the closed loop sent and asked.
type FeedStats struct {
	Probes    int `json:"probes"`
	Detectors int `json:"detectors"`
	Posts     int `json:"posts"`
	Decisions int `json:"decisions"`
}

// loopSite is one stop-line loop: the lane it sits on and its distance from the lane's start.
type loopSite struct {
	ID, Lane string
	PosM     float64
}

// writeLoops writes an e1 loop on every incoming lane of every signal, LoopGapS of free-flow travel before the
// stop line (at least 1 m from the lane's start), as SUMO places the loops of its actuated programs.
func (sc *Scenario) writeLoops(path string) ([]loopSite, error) {
	seen := map[string]bool{}
	var out []loopSite
	var b strings.Builder
	b.WriteString("<additional>\n")
	for _, id := range sortedIDs(sc.TLs) {
		tl := sc.TLs[id]
		for _, li := range sortedInts(tl.In) {
			lane := tl.In[li]
			if seen[lane] {
				continue
			}
			seen[lane] = true
			info, ok := sc.Lanes[lane]
			if !ok || info.LengthM <= 0 {
				continue
			}
			pos := math.Max(math.Min(1, info.LengthM), info.LengthM-2*info.SpeedMS)
			s := loopSite{ID: "cb_" + lane, Lane: lane, PosM: pos}
			out = append(out, s)
			fmt.Fprintf(&b, "  <inductionLoop id=%q lane=%q pos=\"%.2f\" period=\"86400\" file=\"/dev/null\"/>\n", xmlEsc(s.ID), xmlEsc(lane), pos)
		}
	}
	b.WriteString("</additional>\n")
	return out, os.WriteFile(path, []byte(b.String()), 0o644)
}

// loopCtl is the closed loop through CityBrain.
type loopCtl struct {
	gws map[string]*gateway
}

func newLoopCtl(ctx context.Context, c *traci.Client, sc *Scenario, o Options, cyclic bool, loops []loopSite, now float64) (*loopCtl, error) {
	return nil, errors.New("closed loop: not built yet")
}

func (l *loopCtl) step(now float64, subs []traci.Sub) error { return nil }
func (l *loopCtl) close() error                             { return nil }
func (l *loopCtl) feedStats() FeedStats                     { return FeedStats{} }
