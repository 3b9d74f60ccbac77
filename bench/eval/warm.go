package eval

import (
	"context"
	"sort"
	"time"

	"citybrain/engine"
	"citybrain/geo"
)

// The warm-up (issue 12, item 3: "a baseline learned online from the log …, so 'unusual' is judged against
// the link's own history, and a replay can warm it"). Every SUMO run starts from an empty network and every
// engine the corpus fed used to start from nothing, so a link was judged only once its baselines had learned
// from 30 ten-second buckets with traffic (engine/detect learnedBuckets) or been watched 5 minutes, and a
// link still young never raised an alarm alone (until session 16): a fifth of the full closures at 15 % probes (and half at
// 5 %) sat on links young through their first 180 s (docs/incidents.md, "Issue 12, twelfth pass"). A
// deployed engine has watched its city for days. So before a run is fed, the engine (and the tracker that
// extracts the training rows, so the models are fitted on what they judge) is fed the traffic data of
// another day of the same city: another seed's run (warmSeed), never the run itself.
//
// warmShift: that day is fed one day earlier in event time. engine/detect's baselines carry no time of day
// and no decay in time (exponentially weighted over buckets with traffic, so a night without traffic does
// not age them); a gap of a day makes the tracker forget the day's vehicles (5 min), their holds and the
// links' recent buckets (15 min) exactly as a quiet night would, and the engine's incidents of that day go
// quiet and clear. The hour just before would be the same to the baselines but is not what a SUMO run gives:
// its vehicles would vanish mid-road at the joint and the scored run's network starts empty again, a
// discontinuity a deployed engine never sees. The same time of day one day earlier is what a deployed
// engine's history looks like.
const warmShift = 24 * time.Hour

// warmSeed is the seed whose run warms seed's run: the next of the corpus's three (1 → 2 → 3 → 1).
func warmSeed(seed int64) int64 {
	return ((seed%3)+3)%3 + 1
}

// warmPrefix marks the warm-up day's vehicles: another day's trips, not the scored run's vehicles of the
// same SUMO id. Loops keep their ids: the same devices on both days.
const warmPrefix = "warm-"

// warmEvents are run's traffic data (the probes of the 5 % penetration when low, transit, loops) as the
// day before the scored run: shifted back by warmShift, vehicles renamed, sorted by time.
func (run *simRun) warmEvents(low bool) []engine.Event {
	if run == nil {
		return nil
	}
	events := run.trafficEvents(low)
	shift := warmShift.Milliseconds()
	for i := range events {
		e := &events[i]
		e.TS -= shift
		if e.Kind == engine.KindProbe || e.Kind == engine.KindTransit {
			e.ID = warmPrefix + e.ID
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].TS < events[j].TS })
	return events
}

// runSet reads a city's runs once each (a run is the scored run of its seed and the warm-up of another).
type runSet struct {
	ctx  context.Context
	cfg  *Config
	c    *city
	cf   *cityFiles
	endS float64
	runs map[int64]*simRun
}

func newRunSet(ctx context.Context, cfg *Config, c *city, cf *cityFiles, endS float64) *runSet {
	return &runSet{ctx: ctx, cfg: cfg, c: c, cf: cf, endS: endS, runs: map[int64]*simRun{}}
}

func (s *runSet) run(seed int64) (*simRun, error) {
	if r, ok := s.runs[seed]; ok {
		return r, nil
	}
	r, err := simulate(s.ctx, s.cfg, s.c, s.cf, seed, s.endS)
	if err != nil {
		return nil, err
	}
	s.runs[seed] = r
	return r, nil
}

// warm is the run that warms seed's run (nil when the corpus is fed cold).
func (s *runSet) warm(seed int64) (*simRun, error) {
	if s.cfg.Cold {
		return nil, nil
	}
	return s.run(warmSeed(seed))
}

// rows extracts the detector's rows of each seed's run, warmed by its warm-up run (warm), over net at 15 % and
// then 5 % probes, and hands them to add.
func (s *runSet) rows(seeds []int64, net *geo.Network, add func(seed int64, run *simRun, low bool, rows []Row)) error {
	for _, seed := range seeds {
		run, err := s.run(seed)
		if err != nil {
			return err
		}
		warm, err := s.warm(seed)
		if err != nil {
			return err
		}
		for _, low := range []bool{false, true} {
			rows, err := extractRowsWarm(s.ctx, run, warm, net, low)
			if err != nil {
				return err
			}
			add(seed, run, low, rows)
		}
	}
	return nil
}
