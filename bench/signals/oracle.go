package signals

import (
	"math"

	sig "citybrain/engine/signals"
	"citybrain/ingest/sumo/traci"
)

// pressureCtl is max-pressure on TraCI's exact view (the upper bound): every vehicle's lane, position and
// speed, subscribed from its departure.
type pressureCtl struct {
	c     *traci.Client
	sc    *Scenario
	o     Options
	gws   map[string]*gateway
	sigs  []*sigLanes
	lanes map[string]*laneCount
	redAt map[string]float64 // when the lane last lost green
	last  float64
	// on is each vehicle's lane at the last step; crossed is when a vehicle last left each lane.
	on      map[string]string
	crossed map[string]float64
}

// laneCount is a lane's vehicles in one step.
type laneCount struct {
	n, halt, arrive float64
}

func newPressureCtl(c *traci.Client, sc *Scenario, o Options, now float64) (*pressureCtl, error) {
	tls := controlled(sc)
	gws, err := takeOver(c, tls, now, false)
	if err != nil {
		return nil, err
	}
	p := &pressureCtl{c: c, sc: sc, o: o, gws: gws, lanes: map[string]*laneCount{}, redAt: map[string]float64{}, last: math.Inf(-1),
		on: map[string]string{}, crossed: map[string]float64{}}
	for _, tl := range tls {
		p.sigs = append(p.sigs, buildSigLanes(tl, gws[tl.ID]))
	}
	if _, err := c.Subscribe(traci.CmdSubSim, "", traci.VarDepartedIDs); err != nil {
		return nil, err
	}
	return p, nil
}

// HorizonS is how far ahead (at current speed, at least 2 m/s) a moving vehicle counts as an arrival.
const HorizonS = 10.0

func (p *pressureCtl) step(now float64, subs []traci.Sub) error {
	for _, lc := range p.lanes {
		*lc = laneCount{}
	}
	var departed []string
	on := make(map[string]string, len(p.on))
	for _, s := range subs {
		switch {
		case s.Cmd == traci.CmdSubSim+0x10 && len(s.Vals) == 1:
			departed = s.Vals[0].Strings()
		case s.Cmd == traci.CmdSubVeh+0x10 && len(s.Vals) == 3:
			lane, pos, v := s.Vals[0].String(), s.Vals[1].Float(), s.Vals[2].Float()
			if was := p.on[s.ID]; was != "" && was != lane {
				p.crossed[was] = now
			}
			on[s.ID] = lane
			lc := p.lanes[lane]
			if lc == nil {
				lc = &laneCount{}
				p.lanes[lane] = lc
			}
			lc.n++
			switch {
			case v < 0.1:
				lc.halt++
			case (p.sc.Lanes[lane].LengthM-pos)/math.Max(2, v) <= HorizonS:
				lc.arrive++
			}
		}
	}
	p.on = on
	if len(departed) > 0 {
		b := p.c.NewBatch()
		for _, id := range departed {
			b.Subscribe(traci.CmdSubVeh, id, traci.VarLaneID, traci.VarLanePos, traci.VarSpeed)
		}
		if _, err := b.Do(); err != nil {
			return err
		}
	}
	if now-p.last >= p.o.DecideS {
		p.last = now
		for _, s := range p.sigs {
			if s.gw.held || s.gw.inTransition() {
				continue
			}
			ls := make([]sig.LaneState, len(s.lanes))
			for i, l := range s.lanes {
				ls[i] = p.laneState(l, s.outs[i], now)
			}
			ctl := p.o.Control
			ctl.Cyclic = s.gw.cyclic
			d := sig.Decide(s.stages, ls, s.gw.cur, s.gw.elapsed(now), ctl)
			if !d.Hold {
				s.gw.request(d.Phase, now)
			}
		}
	}
	b := p.c.NewBatch()
	for _, s := range p.sigs {
		if !s.gw.held {
			before := s.gw.shown
			if st, ok := s.gw.advance(now); ok {
				b.SetString(traci.CmdSetTL, traci.VarTLState, s.gw.tl.ID, st)
				markRed(p.redAt, s, before, st, now)
			}
		}
	}
	if b.Len() == 0 {
		b.Discard()
		return nil
	}
	_, err := b.Do()
	return err
}

// markRed records when each of a signal's lanes lost green.
func markRed(redAt map[string]float64, s *sigLanes, before, after string, now float64) {
	for li, in := range s.gw.tl.In {
		if li < len(after) && li < len(before) && isGreen(before[li]) && !isGreen(after[li]) {
			redAt[in] = now
		}
	}
}

func (p *pressureCtl) count(l string) laneCount {
	if lc := p.lanes[l]; lc != nil {
		return *lc
	}
	return laneCount{}
}

func (p *pressureCtl) laneState(l string, outs []string, now float64) sig.LaneState {
	info := p.sc.Lanes[l]
	lc := p.count(l)
	st := sig.LaneState{Queue: lc.halt, Arrivals: lc.arrive, Storage: info.LengthM / sig.JamSpacingM}
	// A queue longer than its lane continues on the lanes feeding it.
	for _, f := range p.sc.Feeders[l] {
		fc := p.count(f.Lane)
		st.Queue += fc.halt * f.Share
		st.Storage += p.sc.Lanes[f.Lane].LengthM / sig.JamSpacingM * f.Share
	}
	if len(outs) > 0 {
		for _, o := range outs {
			oc := p.count(o)
			cap := math.Max(1, p.sc.Lanes[o].LengthM/sig.JamSpacingM)
			st.OutFill += math.Min(1, oc.n/cap)
			st.OutQueue += oc.halt
		}
		st.OutFill /= float64(len(outs))
		st.OutQueue /= float64(len(outs))
	}
	if st.Queue > 0 {
		if t, ok := p.redAt[l]; ok {
			st.WaitS = now - t
		}
	}
	st.GapS = math.Inf(1)
	if t, ok := p.crossed[l]; ok {
		st.GapS = now - t
	}
	return st
}

func (p *pressureCtl) close() error { return nil }
